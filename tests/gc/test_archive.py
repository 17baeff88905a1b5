"""Retention and the archive (ADR 0028): what ended moves from Redis to object storage, stays
readable there, can never change again, and a gc killed at any step of moving it loses and
duplicates nothing a reader sees."""

from __future__ import annotations

import itertools
import time
import uuid
from pathlib import Path
from typing import Any

import msgspec
import pytest
import redis.asyncio as aioredis

from batch_gateway.events import EventLog
from batch_gateway.events.archive import EventArchive, StreamEntries
from batch_gateway.events.batch_aggregate import batch_store
from batch_gateway.events.batch_events import (
    BatchCancelRequested,
    BatchProgress,
    RequestCounts,
    Usage,
)
from batch_gateway.events.envelope import ORIGIN
from batch_gateway.events.file_aggregate import file_store
from batch_gateway.events.keys import StreamKeys
from batch_gateway.events.log import ArchivedAggregate
from batch_gateway.events.log_readers import LogReaders
from batch_gateway.events.raw_log import RawLog
from batch_gateway.gateway.batch_event_stream import follow_batch
from batch_gateway.gateway.event_fanout import EventFanout, EventReads
from batch_gateway.gateway.settings import EventStreamSettings
from batch_gateway.gc.archiver import RUNNING_KEEP_SECONDS, RUNNING_TRIM_AT
from batch_gateway.gc.collector import GarbageCollector
from batch_gateway.gc.schedule_snapshot import ScheduleSnapshots
from batch_gateway.gc.settings import GcSettings
from batch_gateway.secret_store import new_secrets_key
from batch_gateway.storage import ObjectStorage, StorageSettings, open_storage
from tests.gc.world import ManualClock, World

RETENTION = 10


class Crash(BaseException):
    """A kill -9 at this step: nothing after it runs, no handler sees it."""


@pytest.mark.parametrize("partitions", [1, 3])
async def test_ended_aggregates_leave_redis_after_the_retention_and_stay_readable(
    tmp_path: Path, redis_client: aioredis.Redis, partitions: int
) -> None:
    async with _world(tmp_path, redis_client, partitions) as (world, make_gc):
        batch_id, file_id = await _history(world)
        keys = world.log.keys
        stored = await world.log.aggregate_entries(batch_id)
        before = await batch_store(world.log).load(batch_id)

        await make_gc(world.now + RETENTION - 1).sweep()
        assert await redis_client.exists(keys.aggregate_stream(batch_id))

        await make_gc(world.now + 2 * RETENTION).sweep()
        for aggregate_id in (batch_id, file_id):
            assert not await redis_client.exists(keys.aggregate_stream(aggregate_id))
            assert not await redis_client.exists(keys.aggregate_snapshot(aggregate_id))
            assert await world.log.version(aggregate_id) < 0  # the tombstone
        assert await _entries_in_redis(redis_client, keys) == 0
        # An event too recent for a segment is read by the gc, but stays until archived.
        await world.upload()
        await make_gc(world.now).sweep()
        assert await _entries_in_redis(redis_client, keys) == 1

        # Loads come from the archive, equal to what Redis had; nothing can be appended.
        assert await batch_store(world.log).load(batch_id) == before
        file, _ = await file_store(world.log).load(file_id)
        assert file is not None
        assert file.lifecycle == "deleted"
        with pytest.raises(ArchivedAggregate):
            await world.log.append(batch_id, world.tenant, before[1], [_cancel()])
        with pytest.raises(ArchivedAggregate):
            await world.log.append(batch_id, world.tenant, 0, [_cancel()])
        # Subscribers replay the same ids and documents.
        raw = RawLog(redis_client, keys, world.log.archive)
        replayed = await raw.read_aggregate(batch_id, None, 500)
        assert [(str(e.stream_id), e.document) for e in replayed] == _ids_and_documents(stored)
        last = await raw.last_of_aggregate(batch_id)
        assert last is not None
        assert last.type == "batch.completed"


async def test_a_long_running_batch_keeps_only_its_recent_progress_in_redis(
    tmp_path: Path, redis_client: aioredis.Redis
) -> None:
    """Trimmed behind its snapshot while it runs, its older events in archived parts: every
    replay and load still sees them all, and its whole archive object holds them once."""
    async with _world(tmp_path, redis_client) as (world, make_gc):
        input_id, _ = await world.upload(b'{"custom_id": "a"}\n')
        batch_id = await world.batch(input_id, total=1)
        await world.claim(batch_id)
        store = batch_store(world.log)
        for _ in range(RUNNING_TRIM_AT + 150):  # as a processor commits: snapshots every 100
            state, version = await store.load(batch_id)
            progress = BatchProgress(request_counts=RequestCounts(), usage=Usage())
            await store.append(batch_id, world.tenant, state, version, [progress])
        keys = world.log.keys
        stored = await world.log.aggregate_entries(batch_id)
        loaded = await store.load(batch_id)

        later = time.time() + 2 * RUNNING_KEEP_SECONDS  # past the part kept however recent
        await make_gc(later).sweep()
        left = await redis_client.xlen(keys.aggregate_stream(batch_id))
        assert left <= 100 < len(stored)  # what came after its snapshot, no more
        raw = RawLog(redis_client, keys, world.log.archive)
        assert await _replayed(raw, batch_id) == _ids_and_documents(stored)
        assert await store.load(batch_id) == loaded
        await redis_client.delete(keys.aggregate_snapshot(batch_id))  # a cold load from parts
        assert await store.load(batch_id) == loaded

        await world.complete(batch_id)
        final = await world.log.aggregate_entries(batch_id)
        # The SSE endpoint's body, while the batch's oldest events are only in the parts.
        fanout = EventFanout(raw, block_seconds=1, buffered_events=10, max_subscribers=1)
        reads = EventReads(raw, max_concurrent=1)
        body = follow_batch(fanout, reads, EventStreamSettings(), batch_id, None)
        messages = [message async for message in body]
        every = _ids_and_documents(stored) + _ids_and_documents(final[-2:])
        assert [_sse_id_and_data(m) for m in messages] == every

        await make_gc(later + 2 * RETENTION).sweep()
        assert await world.log.version(batch_id) < 0
        assert await _replayed(raw, batch_id) == every
        assert [o async for o in world.storage.list(f"events/aggregates/{batch_id}/")] == []


def _sse_id_and_data(message: bytes) -> tuple[str, bytes]:
    lines = message.decode().splitlines()
    return lines[0].removeprefix("id: "), lines[2].removeprefix("data: ").encode()


async def _replayed(raw: RawLog, batch_id: str) -> list[tuple[str, bytes]]:
    """A batch's events as an SSE replay pages through them."""
    seen: list[tuple[str, bytes]] = []
    after = None
    while page := await raw.read_aggregate(batch_id, after, 100):
        seen.extend((str(entry.stream_id), entry.document) for entry in page)
        after = page[-1].stream_id
    return seen


async def test_a_gc_starts_from_its_schedule_snapshot_not_from_all_history(
    tmp_path: Path, redis_client: aioredis.Redis
) -> None:
    async with _world(tmp_path, redis_client) as (world, make_gc):
        await _history(world)
        await make_gc(world.now + 2 * RETENTION).sweep()
        snapshot = await ScheduleSnapshots(redis_client, world.log.keys).load()
        assert snapshot is not None
        input_id, _ = await world.upload()  # after the snapshot

        restarted = make_gc(world.now + 2 * RETENTION)
        await restarted.replay()
        assert restarted.schedule.is_active_file(input_id)
        # The two retired aggregates are forgotten; the one input file of the history stays.
        assert len(restarted.schedule.files) == len(snapshot.schedule.files) + 1
        assert not restarted.schedule.batches


@pytest.mark.parametrize("partitions", [1, 2])
async def test_archival_killed_at_any_step_then_resumed_loses_and_duplicates_nothing(
    tmp_path: Path, redis_client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch, partitions: int
) -> None:
    steps = itertools.count(1)
    crash_at = 0
    calls = 0

    def crashing(method: Any) -> Any:
        async def step(*args: Any, **kwargs: Any) -> Any:
            nonlocal calls
            calls += 1
            if calls == crash_at:
                raise Crash(f"killed at step {crash_at}: {method.__qualname__}")
            return await method(*args, **kwargs)

        return step

    for owner, name in [
        (EventArchive, "_write"),
        (EventLog, "retire"),
        (ScheduleSnapshots, "save"),
        (LogReaders, "register"),
        (LogReaders, "record_floor"),
    ]:
        monkeypatch.setattr(owner, name, crashing(getattr(owner, name)))

    crashed_somewhere = True
    while crashed_somewhere:
        crash_at, calls = next(steps), 0
        scratch = tmp_path / f"k{crash_at}"
        async with _world(scratch, redis_client, partitions) as (world, make_gc):
            ids = [aggregate_id for _ in range(3) for aggregate_id in await _history(world)]
            log_before = await _whole_log(world.log)
            aggregates_before = {i: await world.log.aggregate_entries(i) for i in ids}
            now = world.now + 2 * RETENTION
            try:
                await make_gc(now).sweep()
                crashed_somewhere = False  # every step ran: all were killed once before this
            except Crash:
                crash_at = -1  # the restarted gc runs to the end
                await make_gc(now).sweep()
                await make_gc(now).sweep()
            assert await _whole_log(world.log) == log_before, crash_at
            raw = RawLog(redis_client, world.log.keys, world.log.archive)
            for aggregate_id, entries in aggregates_before.items():
                assert await world.log.version(aggregate_id) < 0
                replayed = await raw.read_aggregate(aggregate_id, None, 500)
                documents = [(str(e.stream_id), e.document) for e in replayed]
                assert documents == _ids_and_documents(entries)
    assert crash_at > 8, "the steps of one archival run were not all reached"


async def _entries_in_redis(client: aioredis.Redis, keys: StreamKeys) -> int:
    return sum([await client.xlen(keys.partition_stream(p)) for p in keys.every_partition])


def _cancel() -> BatchCancelRequested:
    return BatchCancelRequested(cancelling_at=0)


def _ids_and_documents(entries: StreamEntries) -> list[tuple[str, bytes]]:
    return [(raw_id.decode(), fields[b"event"]) for raw_id, fields in entries]


async def _whole_log(log: EventLog) -> list[tuple[str, bytes]]:
    """Every event of the global stream, read as a projector catching up reads it."""
    seen: list[tuple[str, bytes]] = []
    for partition in log.keys.every_partition:
        position = ORIGIN
        while records := await log.read(position, partition=partition):
            for record in records:
                assert record.stream_id > position, "an event read twice"
                seen.append((str(record.stream_id), msgspec.json.encode(record.envelope)))
                position = record.stream_id
    return seen


async def _history(world: World) -> tuple[str, str]:
    """A batch that ran to completion over an input file, and a file deleted by its owner."""
    input_id, _ = await world.upload(b'{"custom_id": "a"}\n')
    batch_id = await world.batch(input_id, total=1)
    await world.claim(batch_id)
    await world.commit_chunk(batch_id, "1-1")
    await world.complete(batch_id)
    deleted_id, _ = await world.upload()
    await world.delete_event_only(deleted_id)
    return batch_id, deleted_id


class _World:
    def __init__(self, tmp_path: Path, redis_client: aioredis.Redis, partitions: int) -> None:
        self._tmp_path = tmp_path
        self._redis = redis_client
        self._partitions = partitions
        self._storage: ObjectStorage | None = None

    async def __aenter__(self) -> tuple[World, Any]:
        settings = StorageSettings(kind="filesystem", fs_root=str(self._tmp_path / "objects"))
        self._storage = storage = await open_storage(settings)
        keys = StreamKeys(f"archive-test-{uuid.uuid4().hex[:10]}", self._partitions)
        start = int(time.time())
        log = EventLog(self._redis, keys, lambda: float(start), EventArchive(storage))
        world = World(log, storage, start)
        gc_settings = GcSettings(
            key_prefix=keys.prefix,
            storage=settings,
            secrets_key=new_secrets_key(),
            event_retention_seconds=RETENTION,
        )

        def make_gc(now: float) -> GarbageCollector:
            return GarbageCollector(
                self._redis,
                keys,
                storage,
                gc_settings,
                ManualClock(int(now)),
                instance="gc",  # a restart: the lease it held is its own
                log=EventLog(self._redis, keys, lambda: float(now), EventArchive(storage)),
            )

        return world, make_gc

    async def __aexit__(self, *exc: object) -> None:
        assert self._storage is not None
        await self._storage.close()


def _world(tmp_path: Path, redis_client: aioredis.Redis, partitions: int = 1) -> _World:
    return _World(tmp_path, redis_client, partitions)
