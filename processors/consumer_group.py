"""A consumer of a Redis consumer group: the Streams discipline in one place.

Groups are created idempotently (only BUSYGROUP is ignored); entries are read with
XREADGROUP BLOCK/COUNT, acknowledged only after their effect is durable, reclaimed with
XAUTOCLAIM once idle past the lease (their consumer is presumed dead), and an entry
delivered more than `max_deliveries` times is reported as poison so its owner can be failed
and the entry moved to the dead-letter stream.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import cast

import redis.asyncio as aioredis
import redis.exceptions

from batch_gateway.errors import Unavailable
from batch_gateway.redis_client import REDIS_OUTAGE
from batch_gateway.storage.errors import StorageUnavailable

Entry = tuple[bytes, dict[bytes, bytes]]
# Faults of the services around a consumer, not of its entries: it backs off and tries again,
# and an entry that met one is not held against (it is not poison for it).
OUTAGES = (*REDIS_OUTAGE, Unavailable, StorageUnavailable)


class ConsumerGroup:
    def __init__(
        self,
        client: aioredis.Redis,
        stream: str,
        group: str,
        consumer: str,
        *,
        lease_ms: int,
        max_deliveries: int,
        dead_letter_stream: str,
    ) -> None:
        self._redis = client
        self.stream = stream
        self.group = group
        self.consumer = consumer
        self._lease_ms = lease_ms
        self._max_deliveries = max_deliveries
        self._dead_letter_stream = dead_letter_stream

    async def ensure(self, start: str = "0") -> None:
        try:
            await self._redis.xgroup_create(self.stream, self.group, id=start, mkstream=True)
        except redis.exceptions.ResponseError as error:
            if not str(error).startswith("BUSYGROUP"):
                raise

    async def read(self, count: int, block_ms: int | None) -> list[Entry]:
        reply = await self._redis.xreadgroup(
            self.group, self.consumer, {self.stream: ">"}, count=count, block=block_ms
        )
        if not reply:
            return []
        return cast(list[tuple[bytes, list[Entry]]], reply)[0][1]

    async def reclaim(self, count: int) -> list[Entry]:
        """Entries whose consumer went quiet for longer than the lease, now ours."""
        reply = await self._redis.xautoclaim(
            self.stream, self.group, self.consumer, self._lease_ms, "0-0", count=count
        )
        claimed = cast(list[Entry], reply[1])
        # Entries deleted from the stream meanwhile come back as (id, None): nothing to do.
        return [(entry_id, fields) for entry_id, fields in claimed if fields]

    async def deliveries(self, entry_id: bytes) -> int:
        pending = await self._redis.xpending_range(
            self.stream, self.group, min=entry_id, max=entry_id, count=1
        )
        return int(pending[0]["times_delivered"]) if pending else 0

    def is_poison(self, deliveries: int) -> bool:
        return deliveries > self._max_deliveries

    async def dead_letter(self, entry_id: bytes, fields: dict[bytes, bytes], reason: str) -> None:
        """Move a poison entry aside (for an operator to inspect) and acknowledge it."""
        record = {**fields, b"source_stream": self.stream.encode(), b"source_id": entry_id}
        record[b"reason"] = reason.encode()
        await self._redis.xadd(self._dead_letter_stream, record)  # type: ignore[arg-type]
        await self.ack(entry_id)

    async def ack(self, *entry_ids: bytes) -> None:
        if entry_ids:
            await self._redis.xack(self.stream, self.group, *entry_ids)


async def drain(step: Callable[[int | None], Awaitable[int]]) -> int:
    """Run a subscriber's non-blocking `step` until a round finds nothing; returns how many
    entries were handled (the drain mode tests use instead of sleeping)."""
    handled = 0
    while (count := await step(None)) > 0:
        handled += count
    return handled
