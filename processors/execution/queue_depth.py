"""Keeping `batch_gateway_queue_depth{priority}` current: jobs no executor has read yet.

A job stream's waiting jobs are the entries past the "executors" group's last-delivered id.
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
from batch_gateway.processors.execution.job_queue import GROUP
from batch_gateway.processors.execution.priority import PRIORITY_CLASSES, job_stream
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
    for priority in PRIORITY_CLASSES:
        waiting = 0
        for partition in keys.every_partition:
            waiting += await waiting_jobs(client, job_stream(keys, priority, partition))
        QUEUE_DEPTH.labels(priority).set(waiting)


async def watch_queue_depth(client: aioredis.Redis, keys: StreamKeys, stop: asyncio.Event) -> None:
    """Refresh the gauge every `REFRESH_SECONDS` until `stop` is set."""
    await refresh_periodically(
        lambda: refresh_queue_depth(client, keys), REFRESH_SECONDS, stop, "queue depth"
    )


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
