"""Read-your-writes: waiting, bounded, for the projector to pass a stream id."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from psycopg_pool import AsyncConnectionPool

from batch_gateway.events import EventLog, StreamId
from batch_gateway.projections.file_queries import FileQueries
from batch_gateway.projections.projector import Projector
from batch_gateway.projections.waiter import ProjectionWaiter
from batch_gateway.stack.redis_server import free_port
from tests.harness.file_events import upload_file


async def _last_id(log: EventLog) -> StreamId:
    return (await log.read())[-1].stream_id


@pytest.fixture
async def running_projector(projector: Projector) -> AsyncIterator[Projector]:
    """`projector` following the log in the background, as `batch-gateway projector` does."""
    stop = asyncio.Event()
    follower = asyncio.create_task(projector.run(stop, block_ms=50), name="test-projector")
    yield projector
    stop.set()
    await asyncio.wait_for(follower, 5)


@pytest.fixture
async def notified_waiter(
    postgres_url: str, pg_schema: str, pool: AsyncConnectionPool
) -> AsyncIterator[ProjectionWaiter]:
    """A waiter that polls so rarely that only a notification can wake it in time."""
    waiter = ProjectionWaiter(postgres_url, pg_schema, pool, poll_seconds=60)
    await waiter.start()
    yield waiter
    await waiter.close()


async def test_a_notification_ends_the_wait_as_soon_as_the_event_is_applied(
    event_log: EventLog,
    running_projector: Projector,
    notified_waiter: ProjectionWaiter,
    queries: FileQueries,
) -> None:
    for _ in range(3):
        file_id = await upload_file(event_log)
        target = await _last_id(event_log)
        started = time.monotonic()

        assert await notified_waiter.wait_for(target, within=10)

        assert time.monotonic() - started < 2
        assert await running_projector.position() >= target
        assert await queries.get("acme", file_id) is not None


async def test_a_position_already_applied_needs_no_wait(
    event_log: EventLog, projector: Projector, notified_waiter: ProjectionWaiter
) -> None:
    await upload_file(event_log)
    await projector.drain()
    started = time.monotonic()
    assert await notified_waiter.wait_for(await _last_id(event_log), within=10)
    assert time.monotonic() - started < 2


async def test_without_a_projector_the_wait_gives_up_after_its_bound(
    event_log: EventLog, postgres_url: str, pg_schema: str, pool: AsyncConnectionPool
) -> None:
    await upload_file(event_log)
    waiter = ProjectionWaiter(postgres_url, pg_schema, pool, poll_seconds=0.05)
    await waiter.start()
    try:
        started = time.monotonic()
        assert not await waiter.wait_for(await _last_id(event_log), within=0.3)
        assert 0.3 <= time.monotonic() - started < 1.5
    finally:
        await waiter.close()


async def test_polling_finds_the_position_without_any_notification(
    event_log: EventLog,
    running_projector: Projector,
    postgres_url: str,
    pg_schema: str,
    pool: AsyncConnectionPool,
) -> None:
    # Never started: no LISTEN connection, so every notification is missed.
    waiter = ProjectionWaiter(postgres_url, pg_schema, pool, poll_seconds=0.05)
    await upload_file(event_log)
    started = time.monotonic()
    assert await waiter.wait_for(await _last_id(event_log), within=10)
    assert time.monotonic() - started < 2


async def test_polling_carries_on_while_the_listener_cannot_connect(
    event_log: EventLog, running_projector: Projector, pg_schema: str, pool: AsyncConnectionPool
) -> None:
    # The listener's PostgreSQL is unreachable (the pool's is fine): it must keep retrying
    # in the background, and the waits succeed by polling.
    unreachable = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    waiter = ProjectionWaiter(unreachable, pg_schema, pool, poll_seconds=0.05)
    await waiter.start()
    try:
        await upload_file(event_log)
        assert await waiter.wait_for(await _last_id(event_log), within=10)
        await asyncio.sleep(0.1)  # let the listener fail at least once
        await upload_file(event_log)
        assert await waiter.wait_for(await _last_id(event_log), within=10)
        listeners = [t for t in asyncio.all_tasks() if t.get_name() == "projection-waiter-listen"]
        assert [listener.done() for listener in listeners] == [False]
    finally:
        await waiter.close()
