"""Moving history out of Redis: the global stream into archive segments, then trimmed behind
every reader; ended aggregates into archive objects, then retired (ADR 0028).

The order is what makes a kill -9 at any step harmless. A segment is written, then the manifest
naming it; only entries the manifest names are ever trimmed, so nothing leaves Redis before it
is durably archived, and a segment written by a run that died before its manifest is written
again, whole, by the next (readers go by the manifest, so they never see it twice). The floor
below which entries may go is recorded in Redis before the trim, so a reader that finds itself
behind it reads the archive first. An aggregate's archive object is written before its stream
is dropped, and the drop leaves a tombstone in one atomic step with it.

The global stream is trimmed behind whichever of these is oldest: the archive, every consumer
group's oldest pending or next undelivered entry, every registered reader's position (the
projectors', and the gc's own schedule snapshot), so no consumer ever misses an entry.
"""

from __future__ import annotations

import logging
from typing import cast

import redis.asyncio as aioredis

from batch_gateway.events import EventLog, StreamId
from batch_gateway.events.aggregate_store import AggregateStore
from batch_gateway.events.archive import EventArchive, Manifest, StreamEntries
from batch_gateway.events.batch_aggregate import BatchState, batch_store
from batch_gateway.events.envelope import ORIGIN
from batch_gateway.events.file_aggregate import FileState, file_store
from batch_gateway.events.log_readers import LogReaders
from batch_gateway.events.snapshots import snapshot_position
from batch_gateway.gc import metrics

logger = logging.getLogger(__name__)

# A running aggregate's stream is trimmed behind its snapshot once it holds this many entries
# (a long batch's progress: ADR 0028), never closer to now than `RUNNING_KEEP_SECONDS`, so a
# processor holding the batch (it reads on from where it was, four times a second) never finds
# what it has not read gone.
RUNNING_TRIM_AT = 200
RUNNING_KEEP_SECONDS = 60.0
# A segment holds at most this many entries; a busy log is cut into segments this size.
SEGMENT_ENTRIES = 10_000
# A quiet log is cut at least this often (or as often as the retention, if that is shorter),
# so the manifest grows by at most a segment an hour at the default retention.
SEGMENT_SECONDS = 3600.0


class Archiver:
    def __init__(
        self, log: EventLog, archive: EventArchive, readers: LogReaders, retention_seconds: float
    ) -> None:
        self._log = log
        self._archive = archive
        self._readers = readers
        self._segment_ms = int(min(SEGMENT_SECONDS, retention_seconds) * 1000)
        self._manifests: dict[int, Manifest] = {}
        self._batches: AggregateStore[BatchState] = batch_store(log)
        self._files: AggregateStore[FileState] = file_store(log)

    @property
    def _redis(self) -> aioredis.Redis:
        return self._log.redis

    async def retire_batch(self, batch_id: str) -> bool:
        return await self._batches.retire(batch_id)

    async def retire_file(self, file_id: str) -> bool:
        return await self._files.retire(file_id)

    async def trim_running(self, aggregate_id: str, now: float) -> int:
        """Archive, as a part, what a running aggregate's stream holds behind its snapshot,
        then trim it there; returns how many entries left Redis."""
        stream = self._log.keys.aggregate_stream(aggregate_id)
        if int(await self._redis.xlen(stream)) < RUNNING_TRIM_AT:
            return 0
        position = await snapshot_position(self._redis, self._log.keys, aggregate_id)
        if position is None:
            return 0
        floor = min(position, StreamId(int((now - RUNNING_KEEP_SECONDS) * 1000), 0))
        if floor <= (await self._log.aggregate_floor(aggregate_id) or ORIGIN):
            return 0
        entries = await self._redis.xrange(stream, min="-", max=f"({floor}")
        if not entries:
            return 0
        await self._archive.put_part(aggregate_id, cast(StreamEntries, entries))
        return await self._log.trim_aggregate(aggregate_id, floor)

    async def archive_log(self, now: float, partition: int = 0) -> int:
        """Archive what has waited long enough (or filled a segment) in a partition of the
        log; returns how many entries went into new segments."""
        # Read afresh every time: another gc may have held the lease and archived meanwhile.
        manifest = await self._archive.manifest(partition)
        archived = 0
        while True:
            entries = await self._unarchived(manifest.through, partition)
            if not entries or not self._cut(entries, now):
                break
            if await self._readers.floor(partition) > _after(manifest.through):
                # Trimmed past this manifest: another gc wrote a newer one since it was read.
                logger.warning("the log was trimmed past archive manifest %s", manifest.through)
                break
            manifest = await self._archive.add_segment(manifest, entries, partition)
            archived += len(entries)
        self._manifests[partition] = manifest
        # How far the whole log is archived: as far as its least archived partition.
        through = min(m.through for m in self._manifests.values())
        metrics.ARCHIVED_THROUGH.set(through.ms / 1000)
        return archived

    async def trim(self, partition: int = 0) -> int:
        """Trim a partition of the log behind the archive and every reader; returns how many
        entries left Redis."""
        manifest = self._manifests.get(partition)  # as `archive_log` left it
        if manifest is None or manifest.through.ms == 0:
            return 0
        readers = [_after(position) for position in await self._readers.positions(partition)]
        consumers = await self._consumer_floors(partition)
        floor = min([_after(manifest.through), *consumers, *readers])
        await self._readers.record_floor(floor, partition)
        stream = self._log.keys.partition_stream(partition)
        trimmed = int(await self._redis.xtrim(stream, minid=str(floor)))
        metrics.TRIMMED.inc(trimmed)
        if trimmed:
            logger.info("trimmed %d archived entries of the log below %s", trimmed, floor)
        return trimmed

    async def _unarchived(self, through: StreamId, partition: int) -> StreamEntries:
        entries = await self._redis.xrange(
            self._log.keys.partition_stream(partition),
            min=f"({through}",
            max="+",
            count=SEGMENT_ENTRIES,
        )
        return cast(StreamEntries, entries)

    def _cut(self, entries: StreamEntries, now: float) -> bool:
        oldest = StreamId.parse(entries[0][0])
        return len(entries) >= SEGMENT_ENTRIES or oldest.ms <= now * 1000 - self._segment_ms

    async def _consumer_floors(self, partition: int) -> list[StreamId]:
        """For each consumer group of the partition, the oldest entry it still needs."""
        stream = self._log.keys.partition_stream(partition)
        floors = []
        for group in await self._redis.xinfo_groups(stream):
            floor = _after(StreamId.parse(group["last-delivered-id"]))
            if int(group["pending"]):
                summary = await self._redis.xpending(stream, group["name"])
                if summary["min"] is not None:  # None: acknowledged in between
                    floor = min(floor, StreamId.parse(summary["min"]))
            floors.append(floor)
        return floors


def _after(position: StreamId) -> StreamId:
    """The smallest id after `position`: the first entry a reader at `position` needs."""
    return StreamId(position.ms, position.seq + 1)
