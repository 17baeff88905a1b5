"""Prometheus metrics of the projector, and the gauges it refreshes on a timer.

`batch_gateway_batches_finished_total{status}` counts terminal batch events the projector
applied, after their transaction committed: the checkpoint makes applying exactly-once, so a
redelivered event is never counted twice (another projector on the same schema counts what it
applied, and the sum over projectors is exact).

`batch_gateway_projector_lag_events` and `batch_gateway_batches{status}` are read from Redis
and PostgreSQL every few seconds rather than at scrape time, which the synchronous probe
server cannot await. The lag is the entries past the checkpoint in PostgreSQL (not this
process's position: a standby projector reports the active one's lag), counted with a capped
XRANGE (core/stream_backlog.py), and the age of the first of them: measured from the log, not
from what was applied, it keeps growing while a projector is stuck. The batch counts are one
`GROUP BY status` over the whole projection, summed over tenants (no tenant label, ever),
refreshed less often since its cost grows with the table.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import get_args

import redis.asyncio as aioredis
from prometheus_client import Counter, Gauge
from psycopg_pool import AsyncConnectionPool

from batch_gateway.events import Recorded, StreamId
from batch_gateway.events.batch_aggregate import BatchStatus
from batch_gateway.events.batch_events import (
    BatchCancelled,
    BatchCompleted,
    BatchExpired,
    BatchFailed,
)
from batch_gateway.events.keys import StreamKeys
from batch_gateway.periodic import refresh_periodically
from batch_gateway.projections.checkpoint import projection_name, read_checkpoint
from batch_gateway.stream_backlog import backlog_after

logger = logging.getLogger(__name__)

PROJECTED_EVENTS = Counter(
    "batch_gateway_projector_events_total", "Events applied to the PostgreSQL projections."
)
PROJECTION_LAG_SECONDS = Gauge(
    "batch_gateway_projector_lag_seconds",
    "Age of the oldest entry of the global stream past the checkpoint (0 when caught up).",
)
PROJECTION_LAG_EVENTS = Gauge(
    "batch_gateway_projector_lag_events",
    "Entries of the global stream past the projection's checkpoint (at most 1000 counted).",
)
BATCHES = Gauge(
    "batch_gateway_batches", "Batches per status in the projection, all tenants.", ["status"]
)
BATCHES_FINISHED = Counter(
    "batch_gateway_batches_finished_total",
    "Terminal batch events applied by the projector: completed, failed, expired, cancelled.",
    ["status"],
)

BATCH_STATUSES: tuple[BatchStatus, ...] = get_args(BatchStatus)
_TERMINAL = {
    BatchCompleted: "completed",
    BatchFailed: "failed",
    BatchExpired: "expired",
    BatchCancelled: "cancelled",
}
# Every status has its series from the start: `increase()` misses a series' first sample, so a
# series born at 1 would hide the first expired or failed batch after a restart from alerts.
for _status in _TERMINAL.values():
    BATCHES_FINISHED.labels(_status)
LAG_COUNT_CAP = 1000
LAG_REFRESH_SECONDS = 5.0
# The batch counts are refreshed on every this many lag refreshes (30 s).
COUNTS_EVERY = 6
_COUNT_BY_STATUS = "SELECT status, count(*) FROM batches GROUP BY status"


def count_finished(applied: list[Recorded]) -> None:
    """Count the terminal batch events among events just applied (and committed)."""
    for record in applied:
        status = _TERMINAL.get(type(record.envelope.event))
        if status is not None:
            BATCHES_FINISHED.labels(status).inc()


class ProjectionGauges:
    """Refreshes the gauges that are counted, not kept, from Redis and PostgreSQL: the lag is
    summed over the partitions of the log (its age is the oldest partition's)."""

    def __init__(self, client: aioredis.Redis, keys: StreamKeys, pool: AsyncConnectionPool) -> None:
        self._redis = client
        self._keys = keys
        self._pool = pool
        self._checkpoints: dict[int, StreamId] = {}

    async def refresh_lag(self) -> None:
        try:
            async with self._pool.connection() as conn:
                for partition in self._keys.every_partition:
                    name = projection_name(partition)
                    self._checkpoints[partition] = await read_checkpoint(conn, name)
        finally:
            # With PostgreSQL down nothing is projected either: the lag past the last
            # checkpoint seen keeps being measured, so the alert sees it grow.
            if self._checkpoints:
                await self._measure_lag()

    async def _measure_lag(self) -> None:
        events, age = 0, 0.0
        for partition, checkpoint in self._checkpoints.items():
            stream = self._keys.partition_stream(partition)
            backlog = await backlog_after(self._redis, stream, str(checkpoint), LAG_COUNT_CAP)
            events += backlog.count
            if backlog.first_id is not None:
                first = StreamId.parse(backlog.first_id)
                age = max(age, time.time() - first.ms / 1000)
        PROJECTION_LAG_EVENTS.set(events)
        PROJECTION_LAG_SECONDS.set(age)

    async def refresh_counts(self) -> dict[str, int]:
        """Set the batches per status; returns them."""
        async with self._pool.connection() as conn:
            cursor = await conn.execute(_COUNT_BY_STATUS)
            found = {str(status): int(n) for status, n in await cursor.fetchall()}
        counts: dict[str, int] = {status: found.get(status, 0) for status in BATCH_STATUSES}
        for status, count in counts.items():
            BATCHES.labels(status).set(count)
        return counts

    async def run(self, stop: asyncio.Event) -> None:
        rounds = 0

        async def refresh() -> None:
            nonlocal rounds
            rounds += 1
            await self.refresh_lag()
            if rounds % COUNTS_EVERY == 1:
                await self.refresh_counts()

        await refresh_periodically(refresh, LAG_REFRESH_SECONDS, stop, "projection gauges")
