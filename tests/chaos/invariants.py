"""What must hold after any fault, once the work is done: every batch ended and completed,
every request answered exactly once, the counts equal to the lines, the projection equal to a
rebuild from the log, nothing left pending in a consumer group or dead-lettered, and no object
in storage that no file names once the gc has swept."""

from __future__ import annotations

import asyncio
import time
import uuid

import redis
from openai import OpenAI
from openai.types import Batch
from psycopg_pool import AsyncConnectionPool

from batch_gateway.clock import system_clock
from batch_gateway.events import EventLog
from batch_gateway.events.archive import ARCHIVE_PREFIX, EventArchive
from batch_gateway.events.keys import StreamKeys
from batch_gateway.processors.execution.job_queue import GROUP as EXECUTORS
from batch_gateway.processors.execution.priority import PRIORITY_CLASSES, job_stream
from batch_gateway.processors.validation.validator import GROUP as VALIDATORS
from batch_gateway.projections.database import drop_schema, open_pool
from batch_gateway.projections.migrations import migrate
from batch_gateway.projections.projector import Projector
from batch_gateway.redis_client import open_redis
from batch_gateway.storage import open_storage
from tests.chaos.stack import ChaosStack
from tests.execution.results import ids, results_of
from tests.harness.projection_rows import Rows, select_all


def assert_batches_done_right(client: OpenAI, batches: dict[str, int]) -> None:
    """Each batch (id -> its number of lines) completed with every line answered once."""
    for batch_id, lines in batches.items():
        batch: Batch = client.batches.retrieve(batch_id)
        assert batch.status == "completed", batch
        results = results_of(client, batch)
        results.assert_each_once(ids(lines))
        results.assert_counts_match(batch)
        assert batch.request_counts is not None
        assert batch.request_counts.total == lines


def assert_nothing_pending(stack: ChaosStack, *, within: float = 15.0) -> None:
    """Nothing stays pending in a consumer group. An entry a killed consumer had read is
    reclaimed by a survivor only once it has been idle past the lease (3 s here), so the
    groups get a few leases to empty after the batches end; nothing is ever dead-lettered."""
    keys = stack.stream_keys()
    client = stack.redis_client()
    try:
        deadline = time.monotonic() + within
        while (pending := _pending(client, keys)) and time.monotonic() < deadline:
            time.sleep(0.25)
        assert not pending, pending
        dead = client.xlen(f"{keys.tag}:dead-letter")
        assert dead == 0, client.xrange(f"{keys.tag}:dead-letter")
    finally:
        client.close()


def _pending(client: redis.Redis, keys: StreamKeys) -> list[tuple[str, str, object]]:
    groups = [
        (job_stream(keys, priority, partition), EXECUTORS)
        for priority in PRIORITY_CLASSES
        for partition in keys.every_partition
    ]
    groups.extend((keys.partition_stream(p), VALIDATORS) for p in keys.every_partition)
    found: list[tuple[str, str, object]] = []
    for stream, group in groups:
        if client.exists(stream):
            pending = client.xpending(stream, group)
            if pending["pending"]:
                found.append((stream, group, pending))
    return found


def assert_projection_equals_rebuild(stack: ChaosStack) -> None:
    assert rebuild_rows(stack) == rows_of(stack, stack.settings.postgres_schema)


def rebuild_rows(stack: ChaosStack) -> tuple[Rows, Rows, Rows]:
    """The rows of a projection rebuilt into a fresh schema from the archive and the log."""
    return asyncio.run(_rebuild(stack))


def rows_of(stack: ChaosStack, schema: str) -> tuple[Rows, Rows, Rows]:
    return asyncio.run(_rows_of(stack.settings.postgres_url, schema))


async def _rows_of(postgres_url: str, schema: str) -> tuple[Rows, Rows, Rows]:
    pool = await open_pool(postgres_url, schema, max_size=1)
    try:
        return await _rows(pool)
    finally:
        await pool.close()


async def _rebuild(stack: ChaosStack) -> tuple[Rows, Rows, Rows]:
    settings = stack.settings
    fresh = f"rebuild_{uuid.uuid4().hex[:12]}"
    client = open_redis(settings.redis_url)
    storage = await open_storage(settings.storage)
    await migrate(settings.postgres_url, fresh)
    rebuilt = await open_pool(settings.postgres_url, fresh, max_size=1)
    try:
        log = EventLog(client, stack.stream_keys(), system_clock, EventArchive(storage))
        for partition in log.keys.every_partition:
            await Projector(log, rebuilt, fresh, partition=partition).drain()
        return await _rows(rebuilt)
    finally:
        await rebuilt.close()
        await storage.close()
        await client.aclose()
        await drop_schema(settings.postgres_url, fresh)


async def _rows(pool: AsyncConnectionPool) -> tuple[Rows, Rows, Rows]:
    return (
        await select_all(pool, "SELECT * FROM files ORDER BY id"),
        await select_all(pool, "SELECT * FROM batches ORDER BY id"),
        await select_all(pool, "SELECT * FROM dead_letters ORDER BY stream_ms, stream_seq"),
    )


def assert_no_orphans_after_gc(stack: ChaosStack) -> None:
    """After a gc sweep that counts anything unnamed as an orphan, storage holds exactly the
    bytes of the files the projection lists as active. The stack's own gc is stopped first:
    it holds the lease, and with it the only right to act."""
    stack.terminate("gc")
    stack.run_gc_once(BATCH_GATEWAY_ORPHAN_GRACE_SECONDS="0")
    named = asyncio.run(_active_file_keys(stack))
    stored = asyncio.run(_stored_keys(stack))
    assert stored == named, stored ^ named


async def _stored_keys(stack: ChaosStack) -> set[str]:
    storage = await open_storage(stack.settings.storage)
    try:
        # The log's archive is not a file's bytes: it is kept, whatever the sweep does.
        return {stored.key async for stored in storage.list("") if not _archived(stored.key)}
    finally:
        await storage.close()


def _archived(key: str) -> bool:
    return key.startswith(ARCHIVE_PREFIX)


async def _active_file_keys(stack: ChaosStack) -> set[str]:
    settings = stack.settings
    pool = await open_pool(settings.postgres_url, settings.postgres_schema, max_size=1)
    try:
        rows = await select_all(pool, "SELECT storage_key FROM files WHERE state = 'active'")
    finally:
        await pool.close()
    return {row[0] for row in rows}


def assert_invariants(stack: ChaosStack, client: OpenAI, batches: dict[str, int]) -> None:
    assert_batches_done_right(client, batches)
    assert_nothing_pending(stack)
    assert_projection_equals_rebuild(stack)
    assert_no_orphans_after_gc(stack)
