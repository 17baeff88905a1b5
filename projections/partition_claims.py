"""Which partitions of the log a projector projects: the projectors split them between them.

A partition is projected by the projector that holds its PostgreSQL advisory lock, a session
lock on a connection of the projector's own (it goes with the process or the connection).
Projectors announce themselves in Redis, refreshed at every round; each takes free partitions
up to its fair share, `ceil(partitions / projectors alive)`, and lets go of any beyond it, so
a projector that joins gets work within a round and the partitions of one that died (its
connection gone, its locks with it) are taken by the others. Projection throughput so grows
with the number of projectors, up to one per partition (ADR 0029).

The locks spread the work; they are not what keeps it right. Two projectors on one partition
(for the moment a lock changes hands) serialise on its checkpoint row, and the second finds
the events applied already.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import zlib
from collections.abc import Awaitable, Callable

import psycopg
import redis.asyncio as aioredis

from batch_gateway.errors import Unavailable
from batch_gateway.events.keys import StreamKeys
from batch_gateway.projections.database import connect
from batch_gateway.redis_client import REDIS_OUTAGE

logger = logging.getLogger(__name__)

ROUND_SECONDS = 2.0
# A projector not heard from for this long is not counted when shares are worked out.
ALIVE_SECONDS = 10.0

Claimed = Callable[[int], Awaitable[None]]

# One lock per (schema, partition): projectors of another schema never compete with these.
_TRY_LOCK = "SELECT pg_try_advisory_lock(hashtext(%s), %s)"
_UNLOCK = "SELECT pg_advisory_unlock(hashtext(%s), %s)"
_POSTGRES_OUTAGE = (psycopg.OperationalError, psycopg.InterfaceError, Unavailable)


class PartitionClaims:
    def __init__(
        self,
        url: str,
        schema: str,
        client: aioredis.Redis,
        keys: StreamKeys,
        name: str,
        *,
        on_claim: Claimed,
        on_release: Claimed,
    ) -> None:
        self._url = url
        self._schema = schema
        self._redis = client
        self._keys = keys
        self._name = name
        self._members = f"{keys.tag}:projectors:{schema}"
        self._on_claim = on_claim
        self._on_release = on_release
        self.held: set[int] = set()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                async with await connect(self._url, self._schema) as conn:
                    while not stop.is_set():
                        await self._balance(conn)
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(stop.wait(), ROUND_SECONDS)
            except (
                psycopg.OperationalError,
                psycopg.InterfaceError,
                Unavailable,
                *REDIS_OUTAGE,
            ) as error:
                logger.warning("partition claims backing off after: %s", error)
                await asyncio.sleep(1.0)
            finally:
                await self._release_all()  # the locks went with the connection
        with contextlib.suppress(*REDIS_OUTAGE):
            await self._redis.hdel(self._members, self._name)

    async def _balance(self, conn: psycopg.AsyncConnection[tuple[object, ...]]) -> None:
        share = math.ceil(self._keys.partitions / await self._alive())
        for partition in sorted(self.held, reverse=True)[: max(0, len(self.held) - share)]:
            await conn.execute(
                "SELECT pg_advisory_unlock(hashtext(%s), %s)", (self._schema, partition)
            )
            self.held.discard(partition)
            await self._on_release(partition)
        for partition in self._candidates():
            if len(self.held) >= share:
                break
            cursor = await conn.execute(_TRY_LOCK, (self._schema, partition))
            row = await cursor.fetchone()
            if row is not None and row[0]:
                self.held.add(partition)
                await self._on_claim(partition)

    async def _alive(self) -> int:
        now = time.time()
        await self._redis.hset(self._members, self._name, str(now))
        members = await self._redis.hgetall(self._members)
        alive = 0
        for member, seen in members.items():
            if float(seen) >= now - ALIVE_SECONDS:
                alive += 1
            else:
                await self._redis.hdel(self._members, member)
        return max(1, alive)

    def _candidates(self) -> list[int]:
        """Free partitions, starting at one that depends on this projector's name, so that
        projectors starting together do not all reach for the same partitions first."""
        count = self._keys.partitions
        start = zlib.crc32(self._name.encode()) % count
        order = [(start + k) % count for k in range(count)]
        return [partition for partition in order if partition not in self.held]

    async def _release_all(self) -> None:
        for partition in sorted(self.held):
            self.held.discard(partition)
            await self._on_release(partition)
