"""The `files` projection: folds file events into the `files` table."""

from __future__ import annotations

from psycopg import AsyncCursor
from psycopg.rows import TupleRow

from batch_gateway.events import FileDeleted, FileExpired, FileUploaded, Recorded

_INSERT = """
INSERT INTO files (id, tenant, filename, purpose, bytes, created_at, expires_at,
                   storage_key, line_count, log_ms, log_seq)
VALUES (%(id)s, %(tenant)s, %(filename)s, %(purpose)s, %(bytes)s, %(created_at)s,
        %(expires_at)s, %(storage_key)s, %(line_count)s, %(log_ms)s, %(log_seq)s)
ON CONFLICT (id) DO NOTHING
"""

_END = """
UPDATE files SET state = %(state)s, ended_at = %(ended_at)s
WHERE id = %(id)s AND state = 'active'
"""


class FilesProjection:
    """Applies file events. Each statement is idempotent on its own, as a second line of
    defence behind the checkpoint (which already makes redelivery a no-op)."""

    async def apply(self, cursor: AsyncCursor[TupleRow], recorded: Recorded) -> None:
        envelope = recorded.envelope
        event = envelope.event
        match event:
            case FileUploaded():
                await cursor.execute(
                    _INSERT,
                    {
                        "id": envelope.aggregate_id,
                        "tenant": envelope.tenant,
                        "filename": event.filename,
                        "purpose": event.purpose,
                        "bytes": event.bytes,
                        "created_at": event.created_at,
                        "expires_at": event.expires_at,
                        "storage_key": event.storage_key,
                        "line_count": event.line_count,
                        "log_ms": recorded.stream_id.ms,
                        "log_seq": recorded.stream_id.seq,
                    },
                )
            case FileDeleted():
                await cursor.execute(
                    _END,
                    {"id": envelope.aggregate_id, "state": "deleted", "ended_at": event.deleted_at},
                )
            case FileExpired():
                await cursor.execute(
                    _END,
                    {"id": envelope.aggregate_id, "state": "expired", "ended_at": event.expired_at},
                )
