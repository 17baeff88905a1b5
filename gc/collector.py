"""The garbage collector: follows the log, expires what falls due, removes what is left over.

Start-up and the checkpoints (ADR 0014): the gc starts from its schedule snapshot and folds
the log after it, or replays the log from its start (archive, then Redis) when there is none
(ADR 0028); each partition of the log (ADR 0029) has its cursor and checkpoint
(gc/log_cursor.py). A checkpoint says only how far the cleanups events call for are done:
while replaying, cleanups of events after it are queued, those at or before it are not. After
each run of cleanups the checkpoint moves to just before the first one still pending (or to
the end of what was read), so a crash re-runs at most cleanups that may not have finished, and
those are idempotent (a delete of bytes already gone deletes and counts nothing).

One sweep: take or renew the lease (only the holder acts), list orphan candidates when an
orphan sweep is due, read the log up to its end, append the expiries that are due by the
injected clock, read those events back, run every pending cleanup (the bytes of files that
ended, leftovers of batches that ended), advance the checkpoints, remove the orphans; and
now and then retire what ended past the retention, archive and trim the log (gc/archiver.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import redis.asyncio as aioredis

from batch_gateway.clock import Clock
from batch_gateway.errors import Unavailable
from batch_gateway.events import EventLog, Recorded, StreamId
from batch_gateway.events.archive import EventArchive
from batch_gateway.events.envelope import ORIGIN
from batch_gateway.events.keys import StreamKeys
from batch_gateway.events.log_readers import LogReaders
from batch_gateway.gc import metrics
from batch_gateway.gc.archiver import Archiver
from batch_gateway.gc.cleanup import Cleaner
from batch_gateway.gc.coordination import Coordination
from batch_gateway.gc.expiry import Expirer
from batch_gateway.gc.log_cursor import LogCursor
from batch_gateway.gc.schedule import Due, DueFile, DueRetirement, Schedule
from batch_gateway.gc.schedule_snapshot import READER_NAME, ScheduleSnapshot, ScheduleSnapshots
from batch_gateway.gc.settings import GcSettings
from batch_gateway.logs import batch_context
from batch_gateway.redis_client import REDIS_OUTAGE
from batch_gateway.secret_store import SecretStore, load_secrets_key
from batch_gateway.storage import ObjectStorage, StorageError
from batch_gateway.stream_backlog import backlog_after
from batch_gateway.tracing import span

logger = logging.getLogger(__name__)

READ_COUNT = 1000
# The lag is counted up to this many entries per partition (XRANGE COUNT), then reported as is.
LAG_CAP = 1000
_CLEANUP_ROUNDS = 3
# Failures that mean "a dependency is down for now": retried at the next sweep.
TRANSIENT = (StorageError, Unavailable, *REDIS_OUTAGE)


class GarbageCollector:
    def __init__(
        self,
        client: aioredis.Redis,
        keys: StreamKeys,
        storage: ObjectStorage,
        settings: GcSettings,
        clock: Clock,
        *,
        instance: str,
        log: EventLog | None = None,
    ) -> None:
        self._redis = client
        self._keys = keys
        self._settings = settings
        self._clock = clock
        self._dry_run = settings.dry_run
        archive = EventArchive(storage)
        self._log = log or EventLog(client, keys, clock, archive)
        self._log.archive = self._log.archive or archive
        self._coordination = Coordination(client, keys, instance, settings.leader_lease_seconds)
        retention = settings.event_retention_seconds
        self.schedule = Schedule(retention)
        self._readers = LogReaders(client, keys, stale_after_seconds=retention)
        self._archiver = Archiver(self._log, archive, self._readers, retention)
        self._snapshots = ScheduleSnapshots(client, keys)
        # Archive, snapshot and trim this often (a short retention asks for it more often).
        self._archive_interval = min(max(retention / 2, 1.0), 60.0)
        self._next_archival = clock()
        self._expirer = Expirer(
            self._log,
            storage,
            clock,
            output_expiry_seconds=settings.output_expiry_seconds,
            dry_run=settings.dry_run,
        )
        secrets = SecretStore(client, keys, load_secrets_key(settings.secrets_key))
        self._cleaner = Cleaner(
            storage, secrets, self._expirer, self.schedule, dry_run=settings.dry_run
        )
        self._cursors = [LogCursor(partition) for partition in keys.every_partition]
        self._read = 0
        self._replayed = False
        self._turn = 0
        self._next_orphan_sweep = clock()

    @property
    def coordination(self) -> Coordination:
        return self._coordination

    @property
    def replayed(self) -> bool:
        return self._replayed

    @property
    def _pending(self) -> int:
        return sum(len(cursor.pending) for cursor in self._cursors)

    async def replay(self) -> None:
        """Rebuild the view from the schedule snapshot and the log after it (or the whole
        log); queue the cleanups after the checkpoints."""
        for cursor in self._cursors:
            cursor.checkpoint = await self._coordination.checkpoint(cursor.partition)
        snapshot = await self._snapshots.load()
        start = "the start of the log"
        if snapshot is not None:
            self.schedule.restore(snapshot.schedule)
            self._read = snapshot.read
            for cursor in self._cursors:
                position = snapshot.positions.get(cursor.partition, ORIGIN)
                cursor.restore(position, snapshot.pending)
            start = f"its schedule snapshot at {_positions(snapshot.positions)}"
        before = self._read
        await self._catch_up()
        self._replayed = True
        checkpoints = {c.partition: c.checkpoint or ORIGIN for c in self._cursors}
        logger.info(
            "gc replayed from %s and folded %d events after it; %d expiries scheduled, "
            "%d cleanups pending after %s",
            start, self._read - before, len(self.schedule), self._pending, _positions(checkpoints),
        )  # fmt: skip

    async def sweep(self, *, orphans: bool | None = None) -> metrics.Tally:
        """One round (see the module docstring); `orphans` forces or skips the orphan sweep."""
        if not self._replayed:
            await self.replay()
        tally = metrics.Tally()
        acting = self._dry_run or await self._coordination.hold()
        metrics.LEADER.set(int(acting and not self._dry_run))
        await self._refresh_checkpoints()
        if not acting:
            await self._catch_up()
            await self._report_lag()
            return tally
        now = self._clock()
        if orphans is None:
            orphans = now >= self._next_orphan_sweep
        candidates = None
        if orphans:
            self._next_orphan_sweep = now + self._settings.orphan_sweep_interval_seconds
            grace = self._settings.orphan_grace_seconds
            candidates = await self._cleaner.list_orphan_candidates(now, grace)
        await self._catch_up()
        for item in self.schedule.pop_due(now):
            await self._expire(item, tally, retry_at=now + self._settings.sweep_interval_seconds)
        # Our own expiry events and the cleanups they call for; a cleanup may append an event
        # in turn (withdrawing an unused error file), whose bytes then go in the next round.
        for _ in range(_CLEANUP_ROUNDS):
            await self._catch_up()
            await self._run_cleanups(tally)
            if self._pending or await self._caught_up():
                break  # done, or a cleanup failed and waits for the next sweep
        if candidates is not None:
            await self._cleaner.remove_orphans(candidates, tally)
        if now >= self._next_archival and not self._dry_run:
            self._next_archival = now + self._archive_interval
            try:
                await self._archive_and_trim(now)
            except TRANSIENT:
                raise  # `run` backs off
            except Exception:
                # Not the gc's to stop for: what is not archived or trimmed now is next time.
                logger.exception("archiving the log failed; trying again at the next sweep")
        await self._report_lag()
        if tally.deleted or tally.expired:
            logger.info("gc sweep%s: %s", " (dry run)" if self._dry_run else "", tally.summary())
        return tally

    async def run(self, stop: asyncio.Event) -> None:
        """Sweep until `stop` is set, waking for new events, due expiries and the interval."""
        while not stop.is_set():
            try:
                await self.sweep()
                await self._wait(stop)
            except TRANSIENT as error:
                logger.warning("gc backing off after: %s", error)
                await _sleep_unless(stop, 1.0)
        if not self._dry_run:
            with contextlib.suppress(*TRANSIENT):
                await self._coordination.release()

    async def _wait(self, stop: asyncio.Event) -> None:
        """Block until new events arrive, the next expiry falls due or the interval passes.
        A read waits on one partition (one hash tag), so the partitions take turns."""
        wait = self._settings.sweep_interval_seconds
        next_due = self.schedule.next_due()
        if next_due is not None:
            wait = min(wait, max(0.0, next_due - self._clock()))
        deadline = time.monotonic() + wait
        block_ms = max(1, 1000 // len(self._cursors))
        while not stop.is_set():
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            if remaining_ms <= 0:
                return
            self._turn = (self._turn + 1) % len(self._cursors)
            cursor = self._cursors[self._turn]
            records = await self._log.tail(
                cursor.position,
                block_ms=min(block_ms, remaining_ms),
                count=READ_COUNT,
                partition=cursor.partition,
            )
            if records:
                self._fold(cursor, records)
                return

    async def _caught_up(self) -> bool:
        for cursor in self._cursors:
            if await self._log.read(cursor.position, 1, cursor.partition):
                return False
        return True

    async def _catch_up(self) -> None:
        for cursor in self._cursors:
            while records := await self._log.read(cursor.position, READ_COUNT, cursor.partition):
                self._fold(cursor, records)
        metrics.SCHEDULED.set(len(self.schedule))

    def _fold(self, cursor: LogCursor, records: list[Recorded]) -> None:
        cursor.fold(records, self.schedule)
        self._read += len(records)

    async def _refresh_checkpoints(self) -> None:
        """Drop cleanups another instance did while it held the lease."""
        for cursor in self._cursors:
            cursor.drop_done(await self._coordination.checkpoint(cursor.partition))

    async def _archive_and_trim(self, now: float) -> None:
        """Archive the log, snapshot the schedule, register its positions, trim (in that
        order: the trim never passes what the archive or the snapshot still needs)."""
        for batch_id, batch in list(self.schedule.batches.items()):
            if not batch.terminal:
                await self._archiver.trim_running(batch_id, now)
        for cursor in self._cursors:
            await self._archiver.archive_log(now, cursor.partition)
        positions = {cursor.partition: cursor.position for cursor in self._cursors}
        pending = [p for cursor in self._cursors for p in cursor.pending]
        snapshot = ScheduleSnapshot(positions, self._read, self.schedule.state(), pending)
        await self._snapshots.save(snapshot)
        for cursor in self._cursors:
            await self._readers.register(READER_NAME, cursor.position, cursor.partition)
            await self._archiver.trim(cursor.partition)

    async def _retire(self, item: DueRetirement, retry_at: float) -> None:
        if self._dry_run:
            logger.info("dry run: would archive %s %s", item.kind, item.aggregate_id)
            return
        if item.kind == "file":
            retired = await self._archiver.retire_file(item.aggregate_id)
        else:
            retired = await self._archiver.retire_batch(item.aggregate_id)
        if retired:
            metrics.RETIRED.labels(item.kind).inc()
            self.schedule.forget(item)
        else:
            self.schedule.retry(item, retry_at)  # it changed after it ended; look again later

    async def _expire(self, item: Due, tally: metrics.Tally, *, retry_at: float) -> None:
        try:
            if isinstance(item, DueRetirement):
                await self._retire(item, retry_at + self._settings.event_retention_seconds)
            elif isinstance(item, DueFile):
                with span("gc.expire_file", attributes={"batch_gateway.file_id": item.file_id}):
                    if await self._expirer.expire_file(item.file_id):
                        tally.expiry("file", dry_run=self._dry_run)
            else:
                attributes = {"batch_gateway.batch_id": item.batch_id}
                with batch_context(item.batch_id), span("gc.expire_batch", attributes=attributes):
                    if await self._expirer.expire_batch(item.batch_id):
                        tally.expiry("batch", dry_run=self._dry_run)
        except TRANSIENT as error:
            logger.warning("expiring %s failed, retrying later: %s", item, error)
            self.schedule.retry(item, retry_at)
        except Exception:
            # Not the gc's to stop for: one aggregate it cannot expire must not stall the rest.
            logger.exception("expiring %s failed; retrying later", item)
            self.schedule.retry(item, retry_at)

    async def _run_cleanups(self, tally: metrics.Tally) -> None:
        for cursor in self._cursors:
            await self._run_cleanups_of(cursor, tally)

    async def _run_cleanups_of(self, cursor: LogCursor, tally: metrics.Tally) -> None:
        pending = cursor.pending
        while pending:
            try:
                # Its storage deletes are this span's children (they make none on their own).
                with span("gc.cleanup"):
                    await self._cleaner.run(pending[0].cleanup, tally)
            except TRANSIENT as error:
                logger.warning("cleanup %s failed, retrying later: %s", pending[0], error)
                break
            except Exception:
                # Skipped rather than retried forever: what it left, the orphan sweep removes.
                logger.exception("cleanup %s failed; skipping it", pending[0])
            pending.popleft()
        if self._dry_run:
            pending.clear()  # reported once; a dry run records no progress
            return
        done_up_to = cursor.done_up_to
        if cursor.checkpoint is None or done_up_to > cursor.checkpoint:
            await self._coordination.save_checkpoint(done_up_to, cursor.partition)
            cursor.checkpoint = done_up_to

    async def _report_lag(self) -> None:
        """Entries in Redis, unread entries and the age of the oldest unfinished one, over
        every partition."""
        entries, unread, oldest_ms = 0, 0, None
        for cursor in self._cursors:
            stream = self._keys.partition_stream(cursor.partition)
            entries += int(await self._redis.xlen(stream))
            backlog = await backlog_after(self._redis, stream, str(cursor.position), LAG_CAP)
            unread += backlog.count
            oldest = cursor.pending[0].event if cursor.pending else None
            if oldest is None and backlog.first_id is not None:
                oldest = StreamId.parse(backlog.first_id)
            if oldest is not None:
                oldest_ms = oldest.ms if oldest_ms is None else min(oldest_ms, oldest.ms)
        metrics.LOG_ENTRIES.set(entries)
        metrics.LAG_EVENTS.set(unread)
        age = 0.0 if oldest_ms is None else max(0.0, time.time() - oldest_ms / 1000)
        metrics.LAG_SECONDS.set(age)


def _positions(positions: dict[int, StreamId]) -> str:
    if len(positions) == 1:
        return str(next(iter(positions.values())))
    return ", ".join(f"p{partition} {position}" for partition, position in positions.items())


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
