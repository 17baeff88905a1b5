"""The projector: the log folded into PostgreSQL, exactly once, and rebuildable."""

from __future__ import annotations

import asyncio
import random

from psycopg import AsyncCursor
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from batch_gateway.events import Event, EventLog, Recorded
from batch_gateway.projections.file_queries import FileQueries, FileRecord
from batch_gateway.projections.files import FilesProjection
from batch_gateway.projections.projector import Projection, Projector
from tests.harness.file_events import (
    delete_file,
    deleted,
    expired,
    new_file_id,
    upload_file,
    uploaded,
)
from tests.harness.projection_rows import checkpoint_rows, file_rows, select_all
from tests.projections.conftest import OpenSchema


async def test_drain_projects_uploads_and_deletes(
    event_log: EventLog, projector: Projector, queries: FileQueries, pool: AsyncConnectionPool
) -> None:
    kept = await upload_file(event_log, purpose="batch")
    gone = await upload_file(event_log, purpose="fine-tune")
    await delete_file(event_log, gone)

    assert await projector.drain() == 3

    assert await queries.get("acme", kept) == FileRecord(
        id=kept,
        tenant="acme",
        filename="input.jsonl",
        purpose="batch",
        bytes=42,
        created_at=1_700_000_000,
        expires_at=None,
        storage_key=f"acme/{kept}",
        line_count=3,
    )
    assert await queries.get("acme", gone) is None
    assert await queries.get("other", kept) is None
    states = await select_all(pool, "SELECT id, state, ended_at FROM files ORDER BY id")
    assert sorted(states) == sorted([(kept, "active", None), (gone, "deleted", 1_700_000_100)])
    assert await projector.drain() == 0


async def test_an_expiry_ends_the_file(
    event_log: EventLog, projector: Projector, queries: FileQueries, pool: AsyncConnectionPool
) -> None:
    file_id = new_file_id()
    await event_log.append(file_id, "acme", 0, [uploaded(expires_at=5)])
    await event_log.append(file_id, "acme", 1, [expired(at=6)])
    await projector.drain()
    assert await queries.get("acme", file_id) is None
    assert await select_all(pool, "SELECT state, ended_at FROM files") == [("expired", 6)]


async def test_the_checkpoint_is_the_last_stream_id(
    event_log: EventLog, projector: Projector, pool: AsyncConnectionPool
) -> None:
    for _ in range(3):
        await upload_file(event_log)
    last = (await event_log.read())[-1].stream_id

    await projector.drain()

    assert await checkpoint_rows(pool) == [("main", last.ms, last.seq)]
    assert await projector.position() == last


async def test_a_small_batch_size_pages_through_the_whole_log(
    event_log: EventLog, pool: AsyncConnectionPool, pg_schema: str, queries: FileQueries
) -> None:
    file_ids = [await upload_file(event_log) for _ in range(7)]
    projector = Projector(event_log, pool, pg_schema, batch_size=2)
    assert await projector.drain() == 7
    page = await queries.list("acme", purpose=None, after=None, limit=100, order="asc")
    assert [record.id for record in page.files] == file_ids


async def test_records_applied_again_change_nothing(
    event_log: EventLog, projector: Projector, pool: AsyncConnectionPool
) -> None:
    first = await upload_file(event_log)
    await upload_file(event_log)
    await delete_file(event_log, first)
    records = await event_log.read()
    await projector.apply(records)
    before = (await file_rows(pool), await checkpoint_rows(pool))

    assert await projector.apply(records) == 0
    assert await projector.apply(records[:1]) == 0
    assert (await file_rows(pool), await checkpoint_rows(pool)) == before


class AppliedCount:
    """A projection that counts, in the database, how often each event took effect."""

    async def apply(self, cursor: AsyncCursor[TupleRow], recorded: Recorded) -> None:
        await cursor.execute(
            "INSERT INTO applied (ms, seq, times) VALUES (%s, %s, 1)"
            " ON CONFLICT (ms, seq) DO UPDATE SET times = applied.times + 1",
            (recorded.stream_id.ms, recorded.stream_id.seq),
        )


async def test_projectors_racing_on_one_schema_apply_each_event_once(
    event_log: EventLog, pool: AsyncConnectionPool, pg_schema: str, postgres_url: str
) -> None:
    async with pool.connection() as conn:
        await conn.execute(
            "CREATE TABLE applied (ms bigint, seq bigint, times int, PRIMARY KEY (ms, seq))"
        )
    projections: list[Projection] = [FilesProjection(), AppliedCount()]
    racers = [
        Projector(event_log, pool, pg_schema, batch_size=size, projections=projections)
        for size in (1, 2, 3, 5)
    ]
    total = 0
    for _ in range(3):
        for _ in range(10):
            await upload_file(event_log)
        total += sum(await asyncio.gather(*(racer.drain() for racer in racers)))

    assert total == 30
    counts = await select_all(pool, "SELECT count(*), min(times), max(times) FROM applied")
    assert counts == [(30, 1, 1)]
    assert len(await file_rows(pool)) == 30


async def test_a_rebuild_from_the_log_equals_the_live_projection(
    event_log: EventLog, open_schema: OpenSchema
) -> None:
    live_schema, live_pool = await open_schema()
    live = Projector(event_log, live_pool, live_schema, batch_size=3)
    chance = random.Random(2)
    versions: dict[str, int] = {}
    for step in range(60):
        active = [file_id for file_id, version in versions.items() if version == 1]
        if active and chance.random() < 0.4:
            file_id = chance.choice(active)
            ends: list[Event] = [deleted(at=step), expired(at=step)]
            end = chance.choice(ends)
            await event_log.append(file_id, "acme", 1, [end])
            versions[file_id] = 2
        else:
            tenant = chance.choice(["acme", "globex"])
            versions[await upload_file(event_log, tenant, purpose=chance.choice(["a", "b"]))] = 1
        if chance.random() < 0.3:
            await live.drain()
    await live.drain()

    rebuilt_schema, rebuilt_pool = await open_schema()
    await Projector(event_log, rebuilt_pool, rebuilt_schema).drain()

    live_rows = await file_rows(live_pool)
    assert len(live_rows) == len(versions)
    assert await file_rows(rebuilt_pool) == live_rows
    assert await checkpoint_rows(rebuilt_pool) == await checkpoint_rows(live_pool)
