"""Opening the Redis (or Valkey) client every component uses.

`redis://` and `rediss://` URLs give a plain client; `redis+cluster://` and
`rediss+cluster://` give a Redis Cluster client. Every key one atomic step touches shares
one hash tag, its partition's (events/keys.py), which is what lets the same code run on a
cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import cast

import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.cluster import RedisCluster

CLUSTER_SUFFIX = "+cluster"

# What a Redis that is down, restarting or stalled raises: a refused or dropped connection,
# or a command or connect that outlived the socket timeout (not a ConnectionError subclass).
REDIS_OUTAGE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


def open_redis(url: str) -> aioredis.Redis:
    scheme, separator, rest = url.partition("://")
    if scheme.endswith(CLUSTER_SUFFIX):
        client = RedisCluster.from_url(scheme.removesuffix(CLUSTER_SUFFIX) + separator + rest)
        # The cluster client answers every command this code sends (streams, scripts, keys);
        # typing it as the plain client keeps one type through the code base.
        return cast(aioredis.Redis, client)
    return aioredis.Redis.from_url(url)


async def settle(client: aioredis.Redis) -> None:
    """Let a cluster client learn the topology before tasks share it. A first refresh
    replaces the startup node and disconnects its free connections in a background task;
    a connection taken meanwhile by another task can be closed under it (redis-py 8). So a
    component learns the topology first, lets that task run, and only then starts its tasks.
    A plain client needs nothing; an unreachable cluster is left to the first command."""
    if isinstance(client, RedisCluster):
        with contextlib.suppress(*REDIS_OUTAGE):
            await client.initialize()
            await client.ping()
            await asyncio.sleep(0.05)
