"""The job streams, one per priority class, read by the "executors" consumer group.

`next` takes the first entry of the highest class that has one (entries whose consumer went
quiet past the lease come first, they are the oldest work), except that after
`STARVATION_LIMIT` consecutive jobs of a higher class while a lower one waits, the lower one
goes first once (ADR 0007). An entry stays pending while its job runs; `heartbeat` keeps its
idle time low so no live processor's job is reclaimed, and `release` makes it reclaimable
before the lease runs out (a job handed over at shutdown, a crashed job retried soon).
"""

from __future__ import annotations

from importlib import resources
from typing import cast

import msgspec
import redis.asyncio as aioredis
from redis.typing import KeyT, StreamIdT

from batch_gateway.events.keys import StreamKeys
from batch_gateway.processors.consumer_group import ConsumerGroup, Entry
from batch_gateway.processors.priority import PRIORITY_CLASSES, job_stream

GROUP = "executors"
_HOLD_ENTRY_LUA = resources.files("batch_gateway.processors").joinpath("hold_entry.lua").read_text()
STARVATION_LIMIT = 8


class ClaimedJob(msgspec.Struct, frozen=True):
    priority: str
    entry_id: bytes
    batch_id: str
    fields: dict[bytes, bytes]
    deliveries: int


class JobQueue:
    def __init__(
        self,
        client: aioredis.Redis,
        keys: StreamKeys,
        consumer: str,
        *,
        lease_ms: int,
        max_deliveries: int,
    ) -> None:
        self._redis = client
        self._consumer = consumer
        self._lease_ms = lease_ms
        self._hold_entry = client.register_script(_HOLD_ENTRY_LUA)
        self._groups = {
            priority: ConsumerGroup(
                client,
                job_stream(keys, priority),
                GROUP,
                consumer,
                lease_ms=lease_ms,
                max_deliveries=max_deliveries,
                dead_letter_stream=f"{keys.tag}:dead-letter",
            )
            for priority in PRIORITY_CLASSES
        }
        self._streak = 0

    def group(self, priority: str) -> ConsumerGroup:
        return self._groups[priority]

    async def ensure(self) -> None:
        for group in self._groups.values():
            await group.ensure()

    async def next(self, block_ms: int | None) -> ClaimedJob | None:
        for priority in PRIORITY_CLASSES:
            reclaimed = await self._groups[priority].reclaim(1)
            if reclaimed:
                return await self._claimed(priority, reclaimed[0])
        # The streak counts jobs taken in class order since a lower class last went first.
        starving = self._streak >= STARVATION_LIMIT
        order = PRIORITY_CLASSES[::-1] if starving else PRIORITY_CLASSES
        for priority in order:
            entries = await self._groups[priority].read(1, None)
            if entries:
                self._streak = 0 if starving else self._streak + 1
                return await self._claimed(priority, entries[0])
        if block_ms is None:
            return None
        streams: dict[KeyT, StreamIdT] = {group.stream: ">" for group in self._groups.values()}
        reply = await self._redis.xreadgroup(
            GROUP, self._consumer, streams, count=1, block=block_ms
        )
        for stream, entries in cast(list[tuple[bytes, list[Entry]]], reply or []):
            for priority, group in self._groups.items():
                if group.stream.encode() == stream and entries:
                    return await self._claimed(priority, entries[0])
        return None

    async def _claimed(self, priority: str, entry: Entry) -> ClaimedJob:
        entry_id, fields = entry
        deliveries = await self._groups[priority].deliveries(entry_id)
        return ClaimedJob(priority, entry_id, fields[b"batch_id"].decode(), fields, deliveries)

    async def heartbeat(self, job: ClaimedJob) -> bool:
        """Reset the entry's idle time if it is still ours; False when it is not."""
        return await self._hold(job, idle_ms=0, deliveries=None)

    async def release(self, job: ClaimedJob, *, after_seconds: float, counted: bool) -> bool:
        """Let another claim (ours included) take the entry `after_seconds` from now, rather
        than after the whole lease. An uncounted release (a handover at shutdown, a crash in an
        outage) takes back this delivery, so that only the job's own faults make it poison."""
        idle_ms = max(0, self._lease_ms - int(after_seconds * 1000))
        return await self._hold(
            job, idle_ms=idle_ms, deliveries=None if counted else max(0, job.deliveries - 1)
        )

    async def _hold(self, job: ClaimedJob, *, idle_ms: int, deliveries: int | None) -> bool:
        stream = self._groups[job.priority].stream
        args: list[bytes | str | int] = [GROUP, self._consumer, job.entry_id, idle_ms]
        args.append("" if deliveries is None else deliveries)
        return bool(await self._hold_entry(keys=[stream], args=args))

    async def done(self, job: ClaimedJob) -> None:
        await self._groups[job.priority].ack(job.entry_id)

    async def dead_letter(self, job: ClaimedJob, reason: str) -> None:
        await self._groups[job.priority].dead_letter(job.entry_id, job.fields, reason)
