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
from batch_gateway.storage import ObjectStorage
from batch_gateway.storage.filesystem import FilesystemStorage
from tests.execution.conftest import MakeQueue
from tests.execution.queued_jobs import LEASE_MS, queued_batch


class _Named:
    """Batches queued under names, so a test can say which came out in which order."""

    def __init__(self, log: EventLog, storage: ObjectStorage) -> None:
        self._log = log
        self._storage = storage
        self.names: dict[str, str] = {}

    async def enqueue(self, priority: str, *names: str) -> None:
        for name in names:
            batch_id, _ = await queued_batch(self._log, self._storage, 1, priority=priority)
            self.names[batch_id] = name

    async def take_all(self, queue: JobQueue) -> list[str]:
        """The names of every batch whose slice the queue hands out, in order."""
        await queue.ensure()
        taken: list[str] = []
        while (job := await queue.next(None)) is not None:
            taken.append(self.names[job.batch_id])
            await queue.done(job)  # done at once: never reclaimed past the short lease
        return taken


async def _claimed_by(queue: JobQueue, log: EventLog, storage: ObjectStorage) -> ClaimedJob:
    """A one-request batch queued as normal and its slice claimed by `queue`."""
    await queue.ensure()
    await queued_batch(log, storage, 1)
    job = await queue.next(None)
    assert job is not None
    return job


async def test_higher_classes_are_taken_first(
    queue_of: MakeQueue,
    redis_client: aioredis.Redis,
    event_log: EventLog,
    storage: FilesystemStorage,
) -> None:
    queue = queue_of("a")
    await queue.ensure()
    named = _Named(event_log, storage)
    await named.enqueue("low", "l0")
    await named.enqueue("normal", "n0")
    await named.enqueue("high", "h0")
    await named.enqueue("normal", "n1")
    await named.enqueue("high", "h1")

    assert await named.take_all(queue) == ["h0", "h1", "n0", "n1", "l0"]


@pytest.mark.parametrize(
    ("higher", "lower"), [("high", "low"), ("normal", "low"), ("high", "normal")]
)
async def test_a_waiting_lower_class_goes_first_once_after_a_streak_of_higher_ones(
    queue_of: MakeQueue,
    redis_client: aioredis.Redis,
    event_log: EventLog,
    storage: FilesystemStorage,
    higher: str,
    lower: str,
) -> None:
    queue = queue_of("a")
    await queue.ensure()
    named = _Named(event_log, storage)
    streak = [f"{higher}{i}" for i in range(STARVATION_LIMIT + 2)]
    await named.enqueue(higher, *streak)
    await named.enqueue(lower, f"{lower}0", f"{lower}1")

    taken = await named.take_all(queue)

    first, rest = streak[:STARVATION_LIMIT], streak[STARVATION_LIMIT:]
    assert taken == [*first, f"{lower}0", *rest, f"{lower}1"]


async def test_an_entry_idle_past_its_lease_is_reclaimed_by_another_processor(
    queue_of: MakeQueue,
    redis_client: aioredis.Redis,
    event_log: EventLog,
    storage: FilesystemStorage,
) -> None:
    a, b = queue_of("a"), queue_of("b")
    job = await _claimed_by(a, event_log, storage)
    assert job.deliveries == 1
    assert await b.next(None) is None  # a's lease still runs

    await asyncio.sleep(LEASE_MS * 1.5 / 1000)
    reclaimed = await b.next(None)

    assert reclaimed is not None
    assert (reclaimed.entry_id, reclaimed.batch_id, reclaimed.deliveries) == (
        job.entry_id,
        job.batch_id,
        2,
    )
    assert await a.heartbeat(job) is False, "the entry is no longer a's"
    assert await b.heartbeat(reclaimed) is True


async def test_the_heartbeat_keeps_a_live_jobs_entry_from_being_reclaimed(
    queue_of: MakeQueue,
    redis_client: aioredis.Redis,
    event_log: EventLog,
    storage: FilesystemStorage,
) -> None:
    a, b = queue_of("a"), queue_of("b")
    job = await _claimed_by(a, event_log, storage)

    for _ in range(6):  # three leases long
        await asyncio.sleep(LEASE_MS / 2 / 1000)
        assert await a.heartbeat(job)
        assert await b.next(None) is None

    pending = await redis_client.xpending(job.stream, GROUP)
    assert pending["pending"] == 1
    assert [(c["name"], c["pending"]) for c in pending["consumers"]] == [(b"a", 1)]


async def test_a_handed_over_entry_is_claimed_at_once_without_counting_the_delivery(
    queue_of: MakeQueue,
    redis_client: aioredis.Redis,
    event_log: EventLog,
    storage: FilesystemStorage,
) -> None:
    a, b = queue_of("a"), queue_of("b")
    job = await _claimed_by(a, event_log, storage)

    assert await a.release(job, after_seconds=0, counted=False)
    taken = await b.next(None)

    assert taken is not None, "no lease to wait out"
    assert (taken.entry_id, taken.deliveries) == (job.entry_id, 1), "a handover is no try"


async def test_a_crashed_entry_released_for_a_retry_counts_its_delivery(
    queue_of: MakeQueue,
    redis_client: aioredis.Redis,
    event_log: EventLog,
    storage: FilesystemStorage,
) -> None:
    a = queue_of("a")
    job = await _claimed_by(a, event_log, storage)

    assert await a.release(job, after_seconds=0, counted=True)
    retried = await a.next(None)

    assert retried is not None
    assert (retried.entry_id, retried.deliveries) == (job.entry_id, 2)


async def test_a_release_waits_the_time_asked_and_only_the_holder_may_release(
    queue_of: MakeQueue,
    redis_client: aioredis.Redis,
    event_log: EventLog,
    storage: FilesystemStorage,
) -> None:
    a, b = queue_of("a"), queue_of("b")
    job = await _claimed_by(a, event_log, storage)

    assert await a.release(job, after_seconds=LEASE_MS / 1000, counted=True)
    assert await b.next(None) is None, "released for later, not for now"
    assert not await b.release(job, after_seconds=0, counted=False), "not b's to release"
    assert await b.next(None) is None
    pending = await redis_client.xpending(job.stream, GROUP)
    assert [(c["name"], c["pending"]) for c in pending["consumers"]] == [(b"a", 1)]
