"""What the projections cannot apply is set aside as a dead letter, exactly once, and the
projector goes on with everything after it; an outage is never a reason to set anything aside."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from psycopg import AsyncCursor, OperationalError
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from batch_gateway.events import EventLog, Recorded
from batch_gateway.projections.dead_letters import DEAD_LETTERS
from batch_gateway.projections.files import FilesProjection
from batch_gateway.projections.projector import Projector
from tests.harness.file_events import new_file_id, upload_file, uploaded
from tests.harness.projection_rows import checkpoint_rows, file_rows, select_all

_DEAD_LETTERS = (
    "SELECT stream_ms, stream_seq, event_type, aggregate_id, error FROM dead_letters"
    " ORDER BY stream_ms, stream_seq"
)


async def test_an_event_postgresql_refuses_is_set_aside_and_the_rest_is_applied(
    event_log: EventLog, projector: Projector, pool: AsyncConnectionPool
) -> None:
    """A NUL in a text value, which PostgreSQL refuses, between two good uploads."""
    before = await upload_file(event_log)
    poisoned = new_file_id()
    [bad] = await event_log.append(poisoned, "acme", 0, [uploaded(filename="a\x00b.jsonl")])
    after = await upload_file(event_log)
    counted = DEAD_LETTERS._value.get()

    assert await projector.drain() == 3

    assert sorted(row[0] for row in await file_rows(pool)) == sorted([before, after])
    [(ms, seq, event_type, aggregate_id, error)] = await select_all(pool, _DEAD_LETTERS)
    assert (ms, seq, event_type, aggregate_id) == (
        bad.stream_id.ms,
        bad.stream_id.seq,
        "file.uploaded",
        poisoned,
    )
    assert "DataError" in error or "NUL" in error
    assert DEAD_LETTERS._value.get() == counted + 1
    last = (await event_log.read())[-1].stream_id
    assert await checkpoint_rows(pool) == [("main", last.ms, last.seq)]


async def test_an_entry_that_does_not_decode_is_kept_whole(
    event_log: EventLog,
    projector: Projector,
    pool: AsyncConnectionPool,
    redis_client: aioredis.Redis,
) -> None:
    """An event type from a newer release, say: the document is kept byte for byte."""
    document = (
        b'{"id":"evt_x","type":"file.renamed","schema_version":1,"aggregate_id":"file-x",'
        b'"aggregate_version":2,"tenant":"acme","occurred_at":1.0,"data":{"filename":"b"}}'
    )
    await redis_client.xadd(
        event_log.keys.global_stream, {"type": "file.renamed", "event": document}
    )
    good = await upload_file(event_log)

    assert await projector.drain() == 2

    assert [row[0] for row in await file_rows(pool)] == [good]
    [(kept, error)] = await select_all(pool, "SELECT document, error FROM dead_letters")
    assert bytes(kept) == document
    assert "file.renamed" in error


async def test_dead_letters_redelivered_are_set_aside_once(
    event_log: EventLog, projector: Projector, pool: AsyncConnectionPool
) -> None:
    await event_log.append(new_file_id(), "acme", 0, [uploaded(filename="\x00")])
    entries = await event_log.read_entries()
    assert await projector.apply(entries) == 1
    counted = DEAD_LETTERS._value.get()

    assert await projector.apply(entries) == 0

    assert len(await select_all(pool, _DEAD_LETTERS)) == 1
    assert DEAD_LETTERS._value.get() == counted


class FailingOnce:
    """A projection whose database goes away once, mid-transaction."""

    def __init__(self) -> None:
        self.failed = False

    async def apply(self, cursor: AsyncCursor[TupleRow], recorded: Recorded) -> None:
        if not self.failed:
            self.failed = True
            raise OperationalError("the connection was lost")


async def test_an_outage_sets_nothing_aside(
    event_log: EventLog, pool: AsyncConnectionPool, pg_schema: str
) -> None:
    """The events are applied once PostgreSQL is back, none set aside."""
    file_id = await upload_file(event_log)
    projector = Projector(
        event_log, pool, pg_schema, projections=[FailingOnce(), FilesProjection()]
    )
    with pytest.raises(OperationalError):
        await projector.drain()
    assert await select_all(pool, _DEAD_LETTERS) == []

    assert await projector.drain() == 1

    assert [row[0] for row in await file_rows(pool)] == [file_id]
    assert await select_all(pool, _DEAD_LETTERS) == []
