"""Read queries over the `files` projection, tenant-scoped, with keyset pagination."""

from __future__ import annotations

from typing import Literal

import msgspec
from psycopg.rows import class_row
from psycopg_pool import AsyncConnectionPool

from batch_gateway.ids import is_file_id

Order = Literal["asc", "desc"]


class FileRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    tenant: str
    filename: str
    purpose: str
    bytes: int
    created_at: int
    expires_at: int | None
    storage_key: str
    line_count: int


class FilePage(msgspec.Struct, frozen=True):
    files: list[FileRecord]
    has_more: bool


_COLUMNS = "id, tenant, filename, purpose, bytes, created_at, expires_at, storage_key, line_count"

_GET = (
    f"SELECT {_COLUMNS} FROM files WHERE id = %(id)s AND tenant = %(tenant)s AND state = 'active'"
)

# `after` names a file of the same tenant; tombstones keep their place in the order, so a
# cursor pointing at a file deleted in the meantime still pages on from where it stood.
_LIST = """
SELECT {columns} FROM files
WHERE tenant = %(tenant)s AND state = 'active'
  AND (%(purpose)s::text IS NULL OR purpose = %(purpose)s)
  AND (%(after)s::text IS NULL OR (log_ms, log_seq) {op} (
        SELECT log_ms, log_seq FROM files WHERE id = %(after)s AND tenant = %(tenant)s))
ORDER BY log_ms {direction}, log_seq {direction}
LIMIT %(limit)s
"""
_LIST_BY_ORDER: dict[Order, str] = {
    "desc": _LIST.format(columns=_COLUMNS, op="<", direction="DESC"),
    "asc": _LIST.format(columns=_COLUMNS, op=">", direction="ASC"),
}

_AFTER_EXISTS = "SELECT 1 FROM files WHERE id = %(after)s AND tenant = %(tenant)s"


class UnknownCursor(LookupError):
    """The `after` cursor names no file of this tenant."""


class FileQueries:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def get(self, tenant: str, file_id: str) -> FileRecord | None:
        if not is_file_id(file_id):
            return None  # never ours, and nothing a client typed reaches the database unchecked
        async with self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=class_row(FileRecord))
            await cursor.execute(_GET, {"id": file_id, "tenant": tenant})
            return await cursor.fetchone()

    async def list(
        self,
        tenant: str,
        *,
        purpose: str | None,
        after: str | None,
        limit: int,
        order: Order,
    ) -> FilePage:
        if after is not None and not is_file_id(after):
            raise UnknownCursor(after)
        params = {"tenant": tenant, "purpose": purpose, "after": after, "limit": limit + 1}
        async with self._pool.connection() as conn:
            if after is not None:
                exists = await conn.execute(_AFTER_EXISTS, params)
                if await exists.fetchone() is None:
                    raise UnknownCursor(after)
            cursor = conn.cursor(row_factory=class_row(FileRecord))
            await cursor.execute(_LIST_BY_ORDER[order], params)
            rows = await cursor.fetchall()
        return FilePage(rows[:limit], has_more=len(rows) > limit)
