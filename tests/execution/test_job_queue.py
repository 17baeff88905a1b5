"""The job streams: priority classes and anti-starvation, and the lease on a claimed job's
entry (reclaimed by another processor when it lapses, kept fresh by the heartbeat)."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from batch_gateway.events import EventLog
from batch_gateway.processors.execution.job_queue import (
    GROUP,
    STARVATION_LIMIT,
    ClaimedJob,
    JobQueue,
)
from batch_gateway.processors.execution.priority import job_stream
from tests.execution.conftest import MakeQueue
from tests.execution.queued_jobs import LEASE_MS


async def _enqueue(client: aioredis.Redis, log: EventLog, priority: str, *batch_ids: str) -> None:
    for batch_id in batch_ids:
        await client.xadd(job_stream(log.keys, priority), {"batch_id": batch_id})


async def _take_all(queue: JobQueue) -> list[str]:
    """The batch ids of every job the queue hands out, in order."""
    await queue.ensure()
    taken: list[str] = []
    while (job := await queue.next(None)) is not None:
        taken.append(job.batch_id)
    return taken


async def _claimed_by(queue: JobQueue, client: aioredis.Redis, log: EventLog) -> ClaimedJob:
    """`batch_x` enqueued as normal and claimed by `queue`."""
    await queue.ensure()
    await _enqueue(client, log, "normal", "batch_x")
    job = await queue.next(None)
    assert job is not None
    return job


async def test_higher_classes_are_taken_first(
    queue_of: MakeQueue, redis_client: aioredis.Redis, event_log: EventLog
) -> None:
    queue = queue_of("a")
    await queue.ensure()
    await _enqueue(redis_client, event_log, "low", "l0")
    await _enqueue(redis_client, event_log, "normal", "n0")
    await _enqueue(redis_client, event_log, "high", "h0")
    await _enqueue(redis_client, event_log, "normal", "n1")
    await _enqueue(redis_client, event_log, "high", "h1")

    assert await _take_all(queue) == ["h0", "h1", "n0", "n1", "l0"]


@pytest.mark.parametrize(
    ("higher", "lower"), [("high", "low"), ("normal", "low"), ("high", "normal")]
)
async def test_a_waiting_lower_class_goes_first_once_after_a_streak_of_higher_ones(
    queue_of: MakeQueue,
    redis_client: aioredis.Redis,
    event_log: EventLog,
    higher: str,
    lower: str,
) -> None:
    queue = queue_of("a")
    await queue.ensure()
    streak = [f"{higher}{i}" for i in range(STARVATION_LIMIT + 2)]
    await _enqueue(redis_client, event_log, higher, *streak)
    await _enqueue(redis_client, event_log, lower, f"{lower}0", f"{lower}1")

    taken = await _take_all(queue)

    first, rest = streak[:STARVATION_LIMIT], streak[STARVATION_LIMIT:]
    assert taken == [*first, f"{lower}0", *rest, f"{lower}1"]


async def test_an_entry_idle_past_its_lease_is_reclaimed_by_another_processor(
    queue_of: MakeQueue, redis_client: aioredis.Redis, event_log: EventLog
) -> None:
    a, b = queue_of("a"), queue_of("b")
    job = await _claimed_by(a, redis_client, event_log)
    assert job.deliveries == 1
    assert await b.next(None) is None  # a's lease still runs

    await asyncio.sleep(LEASE_MS * 1.5 / 1000)
    reclaimed = await b.next(None)

    assert reclaimed is not None
    assert (reclaimed.entry_id, reclaimed.batch_id, reclaimed.deliveries) == (
        job.entry_id,
        "batch_x",
        2,
    )
    assert await a.heartbeat(job) is False, "the entry is no longer a's"
    assert await b.heartbeat(reclaimed) is True


async def test_the_heartbeat_keeps_a_live_jobs_entry_from_being_reclaimed(
    queue_of: MakeQueue, redis_client: aioredis.Redis, event_log: EventLog
) -> None:
    a, b = queue_of("a"), queue_of("b")
    job = await _claimed_by(a, redis_client, event_log)

    for _ in range(6):  # three leases long
        await asyncio.sleep(LEASE_MS / 2 / 1000)
        assert await a.heartbeat(job)
        assert await b.next(None) is None

    pending = await redis_client.xpending(job_stream(event_log.keys, "normal"), GROUP)
    assert pending["pending"] == 1
    assert [(c["name"], c["pending"]) for c in pending["consumers"]] == [(b"a", 1)]


async def test_a_handed_over_entry_is_claimed_at_once_without_counting_the_delivery(
    queue_of: MakeQueue, redis_client: aioredis.Redis, event_log: EventLog
) -> None:
    a, b = queue_of("a"), queue_of("b")
    job = await _claimed_by(a, redis_client, event_log)

    assert await a.release(job, after_seconds=0, counted=False)
    taken = await b.next(None)

    assert taken is not None, "no lease to wait out"
    assert (taken.entry_id, taken.deliveries) == (job.entry_id, 1), "a handover is no try"


async def test_a_crashed_entry_released_for_a_retry_counts_its_delivery(
    queue_of: MakeQueue, redis_client: aioredis.Redis, event_log: EventLog
) -> None:
    a = queue_of("a")
    job = await _claimed_by(a, redis_client, event_log)

    assert await a.release(job, after_seconds=0, counted=True)
    retried = await a.next(None)

    assert retried is not None
    assert (retried.entry_id, retried.deliveries) == (job.entry_id, 2)


async def test_a_release_waits_the_time_asked_and_only_the_holder_may_release(
    queue_of: MakeQueue, redis_client: aioredis.Redis, event_log: EventLog
) -> None:
    a, b = queue_of("a"), queue_of("b")
    job = await _claimed_by(a, redis_client, event_log)

    assert await a.release(job, after_seconds=LEASE_MS / 1000, counted=True)
    assert await b.next(None) is None, "released for later, not for now"
    assert not await b.release(job, after_seconds=0, counted=False), "not b's to release"
    assert await b.next(None) is None
    pending = await redis_client.xpending(job_stream(event_log.keys, "normal"), GROUP)
    assert [(c["name"], c["pending"]) for c in pending["consumers"]] == [(b"a", 1)]
