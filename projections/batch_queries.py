"""Read queries over the `batches` projection, tenant-scoped, newest first, keyset-paginated."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
from psycopg.rows import class_row
from psycopg_pool import AsyncConnectionPool

from batch_gateway.ids import is_batch_id


class BatchRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    tenant: str
    status: str
    endpoint: str
    input_file_id: str
    completion_window: str
    created_at: int
    expires_at: int | None
    in_progress_at: int | None
    finalizing_at: int | None
    completed_at: int | None
    failed_at: int | None
    expired_at: int | None
    cancelling_at: int | None
    cancelled_at: int | None
    errors: dict[str, Any] | None
    metadata: dict[str, str] | None
    model: str | None
    output_file_id: str | None
    error_file_id: str | None
    total: int
    completed: int
    failed: int
    input_tokens: int
    cached_tokens: int
    output_tokens: int
    reasoning_tokens: int
    total_tokens: int


class BatchPage(msgspec.Struct, frozen=True):
    batches: list[BatchRecord]
    has_more: bool


_COLUMNS = ", ".join(field.name for field in msgspec.structs.fields(BatchRecord))

_GET = f"SELECT {_COLUMNS} FROM batches WHERE id = %(id)s AND tenant = %(tenant)s"

_LIST = f"""
SELECT {_COLUMNS} FROM batches
WHERE tenant = %(tenant)s
  AND (%(statuses)s::text[] IS NULL OR status = ANY(%(statuses)s))
  AND (%(after)s::text IS NULL OR (log_ms, log_seq) < (
        SELECT log_ms, log_seq FROM batches WHERE id = %(after)s AND tenant = %(tenant)s))
ORDER BY log_ms DESC, log_seq DESC
LIMIT %(limit)s
"""

_AFTER_EXISTS = "SELECT 1 FROM batches WHERE id = %(after)s AND tenant = %(tenant)s"


class UnknownBatchCursor(LookupError):
    """The `after` cursor names no batch of this tenant."""


class BatchQueries:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def get(self, tenant: str, batch_id: str) -> BatchRecord | None:
        if not is_batch_id(batch_id):
            return None  # never ours, and nothing a client typed reaches the database unchecked
        async with self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=class_row(BatchRecord))
            await cursor.execute(_GET, {"id": batch_id, "tenant": tenant})
            return await cursor.fetchone()

    async def list(
        self,
        tenant: str,
        *,
        after: str | None,
        limit: int,
        statuses: Sequence[str] | None = None,
    ) -> BatchPage:
        """A page of the tenant's batches, newest first; only those in `statuses` if given."""
        if after is not None and not is_batch_id(after):
            raise UnknownBatchCursor(after)
        params = {
            "tenant": tenant,
            "after": after,
            "limit": limit + 1,
            "statuses": list(statuses) if statuses is not None else None,
        }
        async with self._pool.connection() as conn:
            if after is not None:
                exists = await conn.execute(_AFTER_EXISTS, params)
                if await exists.fetchone() is None:
                    raise UnknownBatchCursor(after)
            cursor = conn.cursor(row_factory=class_row(BatchRecord))
            await cursor.execute(_LIST, params)
            rows = await cursor.fetchall()
        return BatchPage(rows[:limit], has_more=len(rows) > limit)
