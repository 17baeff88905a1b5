"""The projector's checkpoint: how far into the global stream the projections have got.

The checkpoint row is locked (`FOR UPDATE`) by the transaction that applies events, and
advanced in that same transaction; a redelivered event therefore finds the checkpoint
already past it and changes nothing, and two projectors racing on one schema serialise
on the row instead of applying an event twice.
"""

from __future__ import annotations

from psycopg import AsyncConnection, AsyncCursor
from psycopg.rows import TupleRow

from batch_gateway.events import StreamId
from batch_gateway.events.envelope import ORIGIN

# The checkpoint row of the projections this release keeps, one per partition of the log.
PROJECTION_NAME = "main"


def projection_name(partition: int) -> str:
    """Partition 0's row is the one an unpartitioned log always had."""
    return PROJECTION_NAME if partition == 0 else f"{PROJECTION_NAME}-p{partition}"


def partition_of_projection(name: str) -> int:
    return int(name.rpartition("-p")[2]) if "-p" in name else 0


def notify_channel(schema: str) -> str:
    """The LISTEN/NOTIFY channel on which the projector announces its progress."""
    return f"{schema}_projected"


_ENSURE = """
INSERT INTO checkpoints (projection, stream_ms, stream_seq) VALUES (%s, 0, 0)
ON CONFLICT (projection) DO NOTHING
"""
_LOCK = "SELECT stream_ms, stream_seq FROM checkpoints WHERE projection = %s FOR UPDATE"
_READ = "SELECT stream_ms, stream_seq FROM checkpoints WHERE projection = %s"
_ADVANCE = "UPDATE checkpoints SET stream_ms = %s, stream_seq = %s WHERE projection = %s"


async def lock_checkpoint(cursor: AsyncCursor[TupleRow], projection: str) -> StreamId:
    """Lock this projection's checkpoint row for the current transaction and read it."""
    await cursor.execute(_ENSURE, (projection,))
    await cursor.execute(_LOCK, (projection,))
    row = await cursor.fetchone()
    assert row is not None  # ensured just above, inside this transaction
    return StreamId(int(row[0]), int(row[1]))


async def advance_checkpoint(
    cursor: AsyncCursor[TupleRow], projection: str, schema: str, position: StreamId
) -> None:
    """Move the checkpoint; the notification (`<partition> <position>`) is delivered only if
    the transaction commits."""
    await cursor.execute(_ADVANCE, (position.ms, position.seq, projection))
    payload = f"{partition_of_projection(projection)} {position}"
    await cursor.execute("SELECT pg_notify(%s, %s)", (notify_channel(schema), payload))


async def read_checkpoint(conn: AsyncConnection[TupleRow], projection: str) -> StreamId:
    cursor = await conn.execute(_READ, (projection,))
    row = await cursor.fetchone()
    return ORIGIN if row is None else StreamId(int(row[0]), int(row[1]))
