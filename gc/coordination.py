"""What gc instances share in Redis: who acts (a lease), and how far it got (the checkpoint).

Any number of gc instances may run; the one holding the lease acts, the others keep their
view of the log current and take over when the holder's lease runs out (it renews the lease
at every sweep). The lease is an optimisation, not what makes the gc safe: an instance that
stalls past its lease and acts late still appends only version-checked events, and deleting
bytes that are already gone is a no-op.

The checkpoint is the global stream id up to which every cleanup an event called for (the
bytes of an ended file, the leftovers of an ended batch) is done. It is stored under
`{prefix}:gc:checkpoint`, beside the log it refers to, and advanced after each applied run of
cleanups; cleanups of events at or before it are never run again.
"""

from __future__ import annotations

from importlib import resources

import redis.asyncio as aioredis

from batch_gateway.events import StreamId
from batch_gateway.events.envelope import ORIGIN
from batch_gateway.events.keys import StreamKeys

_LEASE_LUA = resources.files("batch_gateway.gc").joinpath("lease.lua").read_text()


class Coordination:
    def __init__(
        self, client: aioredis.Redis, keys: StreamKeys, instance: str, lease_seconds: float
    ) -> None:
        self._redis = client
        self._instance = instance
        self._lease_ms = max(1, int(lease_seconds * 1000))
        self._lease_key = f"{keys.tag}:gc:lease"
        self._checkpoint_key = f"{keys.tag}:gc:checkpoint"
        self._lease = client.register_script(_LEASE_LUA)

    @property
    def instance(self) -> str:
        return self._instance

    async def hold(self) -> bool:
        """Take or renew the lease; whether this instance holds it now."""
        held = await self._lease(
            keys=[self._lease_key], args=[self._instance, "hold", self._lease_ms]
        )
        return bool(int(held))

    async def release(self) -> None:
        """Give the lease up (at a clean stop), so that another instance takes over at once."""
        await self._lease(keys=[self._lease_key], args=[self._instance, "release", 0])

    async def holder(self) -> str | None:
        raw = await self._redis.get(self._lease_key)
        return raw.decode() if isinstance(raw, bytes) else None

    async def checkpoint(self, partition: int = 0) -> StreamId:
        """Where the cleanups of a partition's events are done up to; the start of the log
        when none is stored."""
        raw = await self._redis.get(self._checkpoint_of(partition))
        return StreamId.parse(raw) if isinstance(raw, bytes) else ORIGIN

    async def save_checkpoint(self, position: StreamId, partition: int = 0) -> None:
        await self._redis.set(self._checkpoint_of(partition), str(position))

    def _checkpoint_of(self, partition: int) -> str:
        # Partition 0's is the key an unpartitioned log always had.
        return self._checkpoint_key if partition == 0 else f"{self._checkpoint_key}:p{partition}"
