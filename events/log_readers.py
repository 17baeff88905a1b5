"""How far the readers of the global stream have got, and how far it has been trimmed.

A reader that is not a consumer group (a projector, the gc's schedule snapshot) registers its
position here, and the gc trims the global stream only behind every registration younger than
the retention. A reader that stopped for longer than that is not waited for: when it comes
back, it finds itself behind the recorded floor and reads the archive first (`EventLog`), so
trimming past it costs it a slower catch-up, never an event.
"""

from __future__ import annotations

import time
from typing import cast

import redis.asyncio as aioredis

from batch_gateway.events.envelope import ORIGIN, StreamId
from batch_gateway.events.keys import StreamKeys


class LogReaders:
    def __init__(
        self, client: aioredis.Redis, keys: StreamKeys, *, stale_after_seconds: float
    ) -> None:
        self._redis = client
        self._keys = keys
        self._stale_after = stale_after_seconds

    async def register(self, reader: str, position: StreamId, partition: int = 0) -> None:
        value = f"{position}@{time.time()}"
        await self._redis.hset(self._keys.log_readers, f"{reader}@p{partition}", value)

    async def positions(self, partition: int = 0) -> list[StreamId]:
        """The positions in `partition` of the readers that registered within the retention."""
        registered = cast(dict[bytes, bytes], await self._redis.hgetall(self._keys.log_readers))
        oldest_fresh = time.time() - self._stale_after
        positions = []
        for field, value in registered.items():
            if not field.decode().endswith(f"@p{partition}"):
                continue
            position, _, at = value.decode().partition("@")
            if float(at or 0) >= oldest_fresh:
                positions.append(StreamId.parse(position))
        return positions

    async def record_floor(self, floor: StreamId, partition: int = 0) -> None:
        """Recorded BEFORE the trim it announces: a reader never misses an entry unawares. It
        never moves back (a lower floor would hide a trim that happened)."""
        if floor > await self.floor(partition):
            await self._redis.set(self._keys.log_floor(partition), str(floor))

    async def floor(self, partition: int = 0) -> StreamId:
        raw = await self._redis.get(self._keys.log_floor(partition))
        return ORIGIN if raw is None else StreamId.parse(raw)
