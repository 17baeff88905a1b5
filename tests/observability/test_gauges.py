"""The gauges refreshed from Redis and PostgreSQL (queue depth, projector lag, batches per
status), the projector's count of finished batches, and the bound on model labels."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import cast

import pytest
import redis.asyncio as aioredis
import redis.exceptions
from psycopg_pool import AsyncConnectionPool, PoolClosed

from batch_gateway.events import EventLog
from batch_gateway.events.batch_events import BatchError, BatchFailed
from batch_gateway.processors.execution.executor import batch_opening
from batch_gateway.processors.execution.job_queue import JobQueue
from batch_gateway.processors.execution.priority import job_stream
from batch_gateway.processors.execution.queue_depth import refresh_queue_depth, waiting_jobs
from batch_gateway.processors.metrics import OTHER_MODEL, BoundedLabels
from batch_gateway.projections.metrics import BATCH_STATUSES, ProjectionGauges
from batch_gateway.projections.projector import Projector
from batch_gateway.storage.filesystem import FilesystemStorage
from batch_gateway.stream_backlog import entries_after
from tests.execution.queued_jobs import queued_batch
from tests.harness.file_events import new_file_id, uploaded
from tests.observability.samples import value
from tests.processors.batch_inputs import TENANT, create_batch


async def _queue(stream: str, client: aioredis.Redis, count: int) -> None:
    for n in range(count):
        await client.xadd(stream, {"batch_id": f"batch_{n}"})


async def test_queue_depth_counts_the_slices_and_batches_no_executor_has_claimed(
    redis_client: aioredis.Redis, event_log: EventLog, tmp_path: Path
) -> None:
    keys = event_log.keys
    storage = FilesystemStorage(tmp_path)
    await storage.open()
    queue = JobQueue(
        redis_client,
        keys,
        "observer",
        lease_ms=30_000,
        max_deliveries=5,
        describe=batch_opening(event_log),
    )
    await queue.ensure()
    for _ in range(3):
        await queued_batch(event_log, storage, 1, priority="low")
    await queued_batch(event_log, storage, 4, priority="high", slice_size=2)

    await refresh_queue_depth(redis_client, keys)
    batches = {p: value("batch_gateway_queue_depth", priority=p) for p in ("high", "normal", "low")}
    claimed = await queue.next(None)  # opens every batch, claims a slice of the high one
    await refresh_queue_depth(redis_client, keys)
    slices = {p: value("batch_gateway_queue_depth", priority=p) for p in ("high", "normal", "low")}
    await storage.close()

    assert batches == {"high": 1, "normal": 0, "low": 3}
    assert claimed is not None
    assert claimed.priority == "high"
    assert slices == {"high": 1, "normal": 0, "low": 3}
    assert await waiting_jobs(redis_client, job_stream(keys, "low")) == 0, "opened"


async def test_a_queue_stream_redis_refuses_to_describe_is_an_error_not_an_empty_queue(
    redis_client: aioredis.Redis, event_log: EventLog
) -> None:
    missing = job_stream(event_log.keys, "normal")
    broken = job_stream(event_log.keys, "low")
    await redis_client.set(broken, "not a stream")  # XINFO answers WRONGTYPE, as NOPERM would

    assert await waiting_jobs(redis_client, missing) == 0
    with pytest.raises(redis.exceptions.ResponseError):
        await waiting_jobs(redis_client, broken)


async def test_the_backlog_count_stops_at_its_cap(
    redis_client: aioredis.Redis, event_log: EventLog
) -> None:
    stream = job_stream(event_log.keys, "normal")
    await _queue(stream, redis_client, 5)
    entries = cast(list[tuple[bytes, dict[bytes, bytes]]], await redis_client.xrange(stream))
    second = entries[1][0].decode()

    assert await entries_after(redis_client, stream, "0-0", 100) == 5
    assert await entries_after(redis_client, stream, second, 100) == 3
    assert await entries_after(redis_client, stream, "0-0", 4) == 4


async def test_projector_lag_is_the_entries_past_the_checkpoint_and_the_oldest_ones_age(
    redis_client: aioredis.Redis,
    event_log: EventLog,
    pool: AsyncConnectionPool,
    pg_schema: str,
) -> None:
    gauges = ProjectionGauges(redis_client, event_log.keys, pool)
    for _ in range(3):
        await event_log.append(new_file_id(), TENANT, 0, [uploaded()])

    await asyncio.sleep(0.2)  # nothing applies them meanwhile: a stuck projector
    await gauges.refresh_lag()
    behind = value("batch_gateway_projector_lag_events")
    behind_seconds = value("batch_gateway_projector_lag_seconds")
    await Projector(event_log, pool, pg_schema).drain()
    await gauges.refresh_lag()

    assert behind == 3
    assert 0.2 <= behind_seconds < 60
    assert value("batch_gateway_projector_lag_events") == 0
    assert value("batch_gateway_projector_lag_seconds") == 0


async def test_finished_batches_are_counted_once_and_batches_counted_per_status(
    redis_client: aioredis.Redis,
    event_log: EventLog,
    pool: AsyncConnectionPool,
    pg_schema: str,
) -> None:
    projector = Projector(event_log, pool, pg_schema)
    file_id = new_file_id()
    await event_log.append(file_id, TENANT, 0, [uploaded()])
    await create_batch(event_log, file_id)
    failing = await create_batch(event_log, file_id)
    failed = BatchFailed(failed_at=1, errors=[BatchError(code="x", message="y")])
    await event_log.append(failing, TENANT, 1, [failed])
    before = value("batch_gateway_batches_finished_total", status="failed")

    await projector.drain()
    await projector.apply(await event_log.read())  # redelivered: already past the checkpoint
    gauges = ProjectionGauges(redis_client, event_log.keys, pool)
    counts = await gauges.refresh_counts()
    gauge = {status: value("batch_gateway_batches", status=status) for status in BATCH_STATUSES}

    assert value("batch_gateway_batches_finished_total", status="failed") == before + 1
    assert counts == dict.fromkeys(BATCH_STATUSES, 0) | {"validating": 1, "failed": 1}
    assert gauge == counts  # no other projector runs in this process meanwhile


def test_model_labels_are_bounded() -> None:
    labels = BoundedLabels(2)

    admitted = [labels.label(name) for name in ("a", "b", "c", "a", None)]

    assert admitted == ["a", "b", OTHER_MODEL, "a", OTHER_MODEL]


async def test_projector_lag_keeps_growing_while_postgresql_is_unreachable(
    redis_client: aioredis.Redis, event_log: EventLog, pool: AsyncConnectionPool
) -> None:
    gauges = ProjectionGauges(redis_client, event_log.keys, pool)
    await event_log.append(new_file_id(), TENANT, 0, [uploaded()])
    await gauges.refresh_lag()
    before = value("batch_gateway_projector_lag_seconds")

    await pool.close()  # the checkpoint can no longer be read
    await asyncio.sleep(0.2)
    with pytest.raises(PoolClosed):
        await gauges.refresh_lag()

    assert value("batch_gateway_projector_lag_events") == 1
    assert value("batch_gateway_projector_lag_seconds") >= before + 0.2
