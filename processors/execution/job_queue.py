"""The job queue: validated batches, opened into slices that processors claim fairly.

A validated batch is enqueued (atomically with its `batch.validated`) as an entry on the job
stream of its priority class. A processor reads it with the "executors" group and opens the
batch: a stream of its slices (`<tag>:slices:<batch>`, an entry per slice, with an "executors"
group of its own) and an entry in its partition's index of runnable batches (`<tag>:runnable`);
then it acknowledges the batch's entry. Opening is idempotent, so a processor that dies in
between loses nothing.

A slice's entry is what a processor holds while it runs the slice: pending while it runs, kept
fresh by `heartbeat`, reclaimed by any processor once idle past the lease, released early by
`release` (a handover at shutdown, a crashed slice tried again soon), acknowledged when done,
dead-lettered when poison. Which slice a processor claims next (ADR 0030):
- the classes `high`, `normal`, `low` in order, except that after `STARVATION_LIMIT` claims of a
  higher class while a lower one waits, the lower one goes first once (ADR 0007);
- within a class, the tenant this processor holds the fewest slices of for its weight, then
  the batch it holds the fewest of, then the batch queued first;
- never more than `max_slices_per_batch` slices of one batch, so a batch spreads over
  processors and a batch queued later finds a processor with room.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from importlib import resources
from typing import cast

import msgspec
import redis.asyncio as aioredis
from redis.typing import KeyT, StreamIdT

from batch_gateway.events.keys import StreamKeys
from batch_gateway.processors.consumer_group import ConsumerGroup, Entry
from batch_gateway.processors.execution.priority import (
    PRIORITY_CLASSES,
    job_stream,
    runnable_index,
    slice_stream,
)

GROUP = "executors"
STARVATION_LIMIT = 8
# Batch entries opened per step: a burst of new batches is opened within a few steps.
_OPEN_PER_STEP = 16
_SCRIPTS = resources.files("batch_gateway.processors.execution")


def _script(name: str) -> str:
    return _SCRIPTS.joinpath(name).read_text()


class Opening(msgspec.Struct, frozen=True):
    """What opening a batch needs to know of it."""

    tenant: str
    slices: int


class RunnableBatch(msgspec.Struct, frozen=True, array_like=True):
    """A batch's entry in the index of runnable batches."""

    priority: str
    tenant: str
    # The batch's entry id on its job stream: batches queued first go first.
    queued_ms: int
    queued_seq: int


class ClaimedJob(msgspec.Struct, frozen=True):
    """One slice of a batch, claimed: its entry on the batch's slice stream."""

    priority: str
    entry_id: bytes
    batch_id: str
    fields: dict[bytes, bytes]
    deliveries: int
    partition: int = 0  # of the log, whose hash tag the batch's keys share (ADR 0029)
    slice: int = 0
    stream: str = ""
    tenant: str = ""


# A batch id to what opening it needs, or None when there is nothing to run (it ended).
Describe = Callable[[str], Awaitable[Opening | None]]


async def runnable_batches(
    client: aioredis.Redis, keys: StreamKeys
) -> list[tuple[int, str, RunnableBatch]]:
    """Every opened batch that may still have slices to claim: (partition, id, entry)."""
    batches: list[tuple[int, str, RunnableBatch]] = []
    for partition in keys.every_partition:
        index = await client.hgetall(runnable_index(keys, partition))
        for batch_id, raw in cast(dict[bytes, bytes], index).items():
            batches.append((partition, batch_id.decode(), _decode_runnable(raw)))
    return batches


_decode_runnable = msgspec.json.Decoder(RunnableBatch).decode


class JobQueue:
    def __init__(
        self,
        client: aioredis.Redis,
        keys: StreamKeys,
        consumer: str,
        *,
        lease_ms: int,
        max_deliveries: int,
        describe: Describe,
        max_slices_per_batch: int = 2,
        tenant_weights: Mapping[str, float] | None = None,
    ) -> None:
        self._redis = client
        self._keys = keys
        self._consumer = consumer
        self._lease_ms = lease_ms
        self._max_deliveries = max_deliveries
        self._describe = describe
        self._max_slices_per_batch = max_slices_per_batch
        self._weights = dict(tenant_weights or {})
        self._hold_entry = client.register_script(_script("hold_entry.lua"))
        self._open = client.register_script(_script("open_slices.lua"))
        self._claim = client.register_script(_script("claim_slice.lua"))
        # (priority, partition) -> the group of its job stream (batch entries). One blocking
        # read can only wait on streams of one hash tag: it waits on one partition at a time.
        self._batch_groups = {
            (priority, partition): self._group(job_stream(keys, priority, partition))
            for priority in PRIORITY_CLASSES
            for partition in keys.every_partition
        }
        self._streak = 0
        self._turn = 0

    def _group(self, stream: str) -> ConsumerGroup:
        return ConsumerGroup(
            self._redis,
            stream,
            GROUP,
            self._consumer,
            lease_ms=self._lease_ms,
            max_deliveries=self._max_deliveries,
            dead_letter_stream=f"{self._keys.tag}:dead-letter",
        )

    def group(self, job: ClaimedJob) -> ConsumerGroup:
        return self._group(job.stream)

    async def ensure(self) -> None:
        for group in self._batch_groups.values():
            await group.ensure()

    async def next(
        self, block_ms: int | None, held: Sequence[ClaimedJob] = ()
    ) -> ClaimedJob | None:
        """Claim the next slice by the rules above, given the slices this processor `held`;
        with `block_ms`, wait that long for a new batch when there is nothing to claim."""
        await self._open_queued()
        claimed = await self._claim_fairly(held)
        if claimed is not None or block_ms is None:
            return claimed
        self._turn = (self._turn + 1) % self._keys.partitions
        waited = {
            group.stream: (priority, partition)
            for (priority, partition), group in self._batch_groups.items()
            if partition == self._turn
        }
        streams: dict[KeyT, StreamIdT] = dict.fromkeys(waited, ">")
        reply = await self._redis.xreadgroup(
            GROUP, self._consumer, streams, count=1, block=block_ms
        )
        for stream, entries in cast(list[tuple[bytes, list[Entry]]], reply or []):
            for entry in entries:
                await self._open_batch(*waited[stream.decode()], entry)
        return await self._claim_fairly(held)

    async def _open_queued(self) -> None:
        """Open the batches waiting on the job streams (and those a dead opener left)."""
        for (priority, partition), group in self._batch_groups.items():
            entries = await group.reclaim(_OPEN_PER_STEP)
            entries += await group.read(_OPEN_PER_STEP, None)
            for entry in entries:
                await self._open_batch(priority, partition, entry)

    async def _open_batch(self, priority: str, partition: int, entry: Entry) -> None:
        entry_id, fields = entry
        batch_id = fields[b"batch_id"].decode()
        opening = await self._describe(batch_id)
        if opening is not None:
            ms, _, seq = entry_id.partition(b"-")
            runnable = RunnableBatch(priority, opening.tenant, int(ms), int(seq or 0))
            keys = [
                slice_stream(self._keys, partition, batch_id),
                runnable_index(self._keys, partition),
            ]
            args: list[str | int | bytes] = [
                GROUP, batch_id, opening.slices, msgspec.json.encode(runnable)
            ]  # fmt: skip
            await self._open(keys=keys, args=args)
        await self._batch_groups[priority, partition].ack(entry_id)

    async def _claim_fairly(self, held: Sequence[ClaimedJob]) -> ClaimedJob | None:
        batches = await runnable_batches(self._redis, self._keys)
        if not batches:
            return None
        per_batch = Counter(job.batch_id for job in held)
        per_tenant = Counter(job.tenant for job in held)
        waiting = {entry.priority for _, _, entry in batches}
        top = next(priority for priority in PRIORITY_CLASSES if priority in waiting)
        starving = self._streak >= STARVATION_LIMIT and len(waiting) > 1
        order = PRIORITY_CLASSES[::-1] if starving else PRIORITY_CLASSES

        def rank(batch: tuple[int, str, RunnableBatch]) -> tuple[int, float, int, int, int]:
            _, batch_id, entry = batch
            share = per_tenant[entry.tenant] / self._weights.get(entry.tenant, 1.0)
            queued = (entry.queued_ms, entry.queued_seq)
            return (order.index(entry.priority), share, per_batch[batch_id], *queued)

        for partition, batch_id, entry in sorted(batches, key=rank):
            if per_batch[batch_id] >= self._max_slices_per_batch:
                continue
            claimed = await self._claim_slice(partition, batch_id, entry)
            if claimed is not None:
                if starving:
                    self._streak = 0
                elif entry.priority == top and len(waiting) > 1:
                    self._streak += 1
                return claimed
        return None

    async def _claim_slice(
        self, partition: int, batch_id: str, entry: RunnableBatch
    ) -> ClaimedJob | None:
        stream = slice_stream(self._keys, partition, batch_id)
        keys = [stream, runnable_index(self._keys, partition)]
        reply = await self._claim(keys=keys, args=[GROUP, self._consumer, self._lease_ms, batch_id])
        if not isinstance(reply, list):
            return None  # every slice is held, or none is left
        entry_id, flat, deliveries = reply
        fields = dict(zip(flat[::2], flat[1::2], strict=True))
        return ClaimedJob(
            entry.priority,
            entry_id,
            batch_id,
            fields,
            int(deliveries),
            partition,
            slice=int(fields[b"slice"]),
            stream=stream,
            tenant=entry.tenant,
        )

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
        args: list[bytes | str | int] = [GROUP, self._consumer, job.entry_id, idle_ms]
        args.append("" if deliveries is None else deliveries)
        return bool(await self._hold_entry(keys=[job.stream], args=args))

    async def done(self, job: ClaimedJob) -> None:
        await self.group(job).ack(job.entry_id)

    async def dead_letter(self, job: ClaimedJob, reason: str) -> None:
        await self.group(job).dead_letter(job.entry_id, job.fields, reason)
