"""Keeping `batch_gateway_queue_depth{priority}` current: slices no executor has claimed yet,
and batches not opened into slices yet (job_queue.py).

A stream's waiting entries are those past the "executors" group's last-delivered id.
Redis 7 reports that count as the group's `lag` in `XINFO GROUPS`, in constant time; where it
cannot (Redis 6, or a lag Redis no longer knows after entries were deleted) the entries are
counted with a capped XRANGE, cheap because a job entry holds only a batch id. Refreshed on a
timer rather than on each scrape: the probe server's scrape is synchronous, and a few seconds
of staleness do not matter to a gauge that alerts after minutes.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions

from batch_gateway.events.keys import StreamKeys
from batch_gateway.periodic import refresh_periodically
from batch_gateway.processors.execution.job_queue import GROUP, runnable_batches
from batch_gateway.processors.execution.priority import PRIORITY_CLASSES, job_stream, slice_stream
from batch_gateway.processors.metrics import QUEUE_DEPTH
from batch_gateway.stream_backlog import entries_after

logger = logging.getLogger(__name__)

REFRESH_SECONDS = 5.0
# More waiting jobs than this are reported as this many (Redis 6 only; see above).
COUNT_CAP = 10_000


async def waiting_jobs(client: aioredis.Redis, stream: str) -> int:
    """Entries of the job stream the executors' group has not read yet."""
    try:
        groups: list[dict[str, Any]] = await client.xinfo_groups(stream)
    except redis.exceptions.ResponseError as error:
        if "no such key" not in str(error).lower():
            raise  # WRONGTYPE, NOPERM, a failover: not an empty queue
        return 0  # no stream yet: nothing was ever queued in this class
    group = next((g for g in groups if _text(g.get("name")) == GROUP), None)
    if group is None:
        return await entries_after(client, stream, "0-0", COUNT_CAP)
    lag = group.get("lag")
    if isinstance(lag, int):
        return lag
    return await entries_after(client, stream, _text(group["last-delivered-id"]), COUNT_CAP)


async def refresh_queue_depth(client: aioredis.Redis, keys: StreamKeys) -> None:
    waiting = dict.fromkeys(PRIORITY_CLASSES, 0)
    for priority in PRIORITY_CLASSES:
        for partition in keys.every_partition:
            waiting[priority] += await waiting_jobs(client, job_stream(keys, priority, partition))
    for partition, batch_id, entry in await runnable_batches(client, keys):
        slices = await waiting_jobs(client, slice_stream(keys, partition, batch_id))
        waiting[entry.priority] = waiting.get(entry.priority, 0) + slices
    for priority, count in waiting.items():
        QUEUE_DEPTH.labels(priority).set(count)


async def watch_queue_depth(client: aioredis.Redis, keys: StreamKeys, stop: asyncio.Event) -> None:
    """Refresh the gauge every `REFRESH_SECONDS` until `stop` is set."""
    await refresh_periodically(
        lambda: refresh_queue_depth(client, keys), REFRESH_SECONDS, stop, "queue depth"
    )


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
