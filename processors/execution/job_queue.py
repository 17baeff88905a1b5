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
from batch_gateway.processors.execution.priority import PRIORITY_CLASSES, job_stream

GROUP = "executors"
_HOLD_ENTRY_LUA = (
    resources.files("batch_gateway.processors.execution").joinpath("hold_entry.lua").read_text()
)
STARVATION_LIMIT = 8


class ClaimedJob(msgspec.Struct, frozen=True):
    priority: str
    entry_id: bytes
    batch_id: str
    fields: dict[bytes, bytes]
    deliveries: int
    partition: int = 0  # of the log, whose hash tag the job stream shares (ADR 0029)


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
        # (priority, partition) -> its group. One blocking read can only wait on streams of
        # one hash tag, so it waits on one partition's classes at a time, in turn.
        self._groups = {
            (priority, partition): ConsumerGroup(
                client,
                job_stream(keys, priority, partition),
                GROUP,
                consumer,
                lease_ms=lease_ms,
                max_deliveries=max_deliveries,
                dead_letter_stream=f"{keys.tag}:dead-letter",
            )
            for priority in PRIORITY_CLASSES
            for partition in keys.every_partition
        }
        self._partitions = keys.partitions
        self._streak = 0
        self._turn = 0

    def group(self, job: ClaimedJob) -> ConsumerGroup:
        return self._groups[job.priority, job.partition]

    async def ensure(self) -> None:
        for group in self._groups.values():
            await group.ensure()

    async def next(self, block_ms: int | None) -> ClaimedJob | None:
        for (priority, partition), group in self._groups.items():
            reclaimed = await group.reclaim(1)
            if reclaimed:
                return await self._claimed(priority, partition, reclaimed[0])
        # The streak counts jobs taken in class order since a lower class last went first.
        starving = self._streak >= STARVATION_LIMIT
        order = PRIORITY_CLASSES[::-1] if starving else PRIORITY_CLASSES
        self._turn = (self._turn + 1) % self._partitions
        for priority in order:
            for partition in self._in_turn():
                entries = await self._groups[priority, partition].read(1, None)
                if entries:
                    self._streak = 0 if starving else self._streak + 1
                    return await self._claimed(priority, partition, entries[0])
        if block_ms is None:
            return None
        waited = {
            group.stream: (priority, partition)
            for (priority, partition), group in self._groups.items()
            if partition == self._turn
        }
        streams: dict[KeyT, StreamIdT] = dict.fromkeys(waited, ">")
        reply = await self._redis.xreadgroup(
            GROUP, self._consumer, streams, count=1, block=block_ms
        )
        for stream, entries in cast(list[tuple[bytes, list[Entry]]], reply or []):
            if entries:
                return await self._claimed(*waited[stream.decode()], entries[0])
        return None

    def _in_turn(self) -> list[int]:
        """Every partition, starting at this round's: no partition's jobs always wait last."""
        return [(self._turn + k) % self._partitions for k in range(self._partitions)]

    async def _claimed(self, priority: str, partition: int, entry: Entry) -> ClaimedJob:
        entry_id, fields = entry
        deliveries = await self._groups[priority, partition].deliveries(entry_id)
        batch_id = fields[b"batch_id"].decode()
        return ClaimedJob(priority, entry_id, batch_id, fields, deliveries, partition)

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
        stream = self.group(job).stream
        args: list[bytes | str | int] = [GROUP, self._consumer, job.entry_id, idle_ms]
        args.append("" if deliveries is None else deliveries)
        return bool(await self._hold_entry(keys=[stream], args=args))

    async def done(self, job: ClaimedJob) -> None:
        await self.group(job).ack(job.entry_id)

    async def dead_letter(self, job: ClaimedJob, reason: str) -> None:
        await self.group(job).dead_letter(job.entry_id, job.fields, reason)
