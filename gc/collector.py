"""The garbage collector: follows the log, expires what falls due, removes what is left over.

Start-up and the checkpoint (ADR 0014): the gc always replays the global stream from its start
to rebuild its view and schedule (expiries depend on the state of every file and batch, not
on recent events). The checkpoint says only how far the cleanups events call for are done:
while replaying, cleanups of events after it are queued, those at or before it are not. After
each run of cleanups the checkpoint moves to just before the first one still pending (or to
the end of what was read), so a crash re-runs at most cleanups that may not have finished, and
those are idempotent (a delete of bytes already gone deletes and counts nothing).

One sweep: take or renew the lease (only the holder acts), list orphan candidates when an
orphan sweep is due, read the log up to its end, append the expiries that are due by the
injected clock, read those events back, run every pending cleanup (the bytes of files that
ended, leftovers of batches that ended), advance the checkpoint, then remove the orphans.
"""

from __future__ import annotations

import asyncio
import collections
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
from batch_gateway.gc.schedule import Due, DueFile, DueRetirement, Schedule
from batch_gateway.gc.schedule_snapshot import (
    READER_NAME,
    PendingCleanup,
    ScheduleSnapshot,
    ScheduleSnapshots,
)
from batch_gateway.logs import batch_context
from batch_gateway.redis_client import REDIS_OUTAGE
from batch_gateway.secret_store import SecretStore, load_secrets_key
from batch_gateway.settings import GcSettings
from batch_gateway.storage import ObjectStorage, StorageError
from batch_gateway.tracing import span

logger = logging.getLogger(__name__)

READ_COUNT = 1000
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
        self._position = ORIGIN
        self._read = 0
        self._checkpoint: StreamId | None = None
        self._pending: collections.deque[PendingCleanup] = collections.deque()
        self._next_orphan_sweep = clock()

    @property
    def coordination(self) -> Coordination:
        return self._coordination

    @property
    def replayed(self) -> bool:
        return self._checkpoint is not None

    async def replay(self) -> None:
        """Rebuild the view from the schedule snapshot and the log after it (or the whole
        log); queue the cleanups after the checkpoint."""
        self._checkpoint = await self._coordination.checkpoint()
        snapshot = await self._snapshots.load()
        start = "the start of the log"
        if snapshot is not None:
            self.schedule.restore(snapshot.schedule)
            self._position, self._read = snapshot.position, snapshot.read
            self._pending.extend(p for p in snapshot.pending if p.event > self._checkpoint)
            start = f"its schedule snapshot at {snapshot.position}"
        before = self._read
        await self._catch_up()
        logger.info(
            "gc replayed from %s and folded %d events after it; %d expiries scheduled, "
            "%d cleanups pending after %s",
            start, self._read - before, len(self.schedule), len(self._pending), self._checkpoint,
        )  # fmt: skip

    async def sweep(self, *, orphans: bool | None = None) -> metrics.Tally:
        """One round (see the module docstring); `orphans` forces or skips the orphan sweep."""
        if self._checkpoint is None:
            await self.replay()
        tally = metrics.Tally()
        acting = self._dry_run or await self._coordination.hold()
        metrics.LEADER.set(int(acting and not self._dry_run))
        await self._refresh_checkpoint()
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
        """Block until new events arrive, the next expiry falls due or the interval passes."""
        wait = self._settings.sweep_interval_seconds
        next_due = self.schedule.next_due()
        if next_due is not None:
            wait = min(wait, max(0.0, next_due - self._clock()))
        deadline = time.monotonic() + wait
        while not stop.is_set():
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            if remaining_ms <= 0:
                return
            records = await self._log.tail(
                self._position, block_ms=min(1000, remaining_ms), count=READ_COUNT
            )
            if records:
                self._fold(records)
                return

    async def _caught_up(self) -> bool:
        return not await self._log.read(self._position, 1)

    async def _catch_up(self) -> None:
        while records := await self._log.read(self._position, READ_COUNT):
            self._fold(records)
        metrics.SCHEDULED.set(len(self.schedule))

    def _fold(self, records: list[Recorded]) -> None:
        checkpoint = self._checkpoint or ORIGIN
        for record in records:
            cleanups = self.schedule.apply(record.envelope)
            if record.stream_id > checkpoint:
                self._pending.extend(
                    PendingCleanup(record.stream_id, self._position, cleanup)
                    for cleanup in cleanups
                )
            self._position = record.stream_id
            self._read += 1

    async def _refresh_checkpoint(self) -> None:
        """Drop cleanups another instance did while it held the lease."""
        stored = await self._coordination.checkpoint()
        if self._checkpoint is not None and stored > self._checkpoint:
            self._checkpoint = stored
            while self._pending and self._pending[0].event <= stored:
                self._pending.popleft()

    async def _archive_and_trim(self, now: float) -> None:
        """Archive the log, snapshot the schedule, register its position, trim (in that
        order: the trim never passes what the archive or the snapshot still needs)."""
        await self._archiver.archive_log(now)
        pending = list(self._pending)
        await self._snapshots.save(
            ScheduleSnapshot(self._position, self._read, self.schedule.state(), pending)
        )
        await self._readers.register(READER_NAME, self._position)
        await self._archiver.trim()

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
        while self._pending:
            try:
                # Its storage deletes are this span's children (they make none on their own).
                with span("gc.cleanup"):
                    await self._cleaner.run(self._pending[0].cleanup, tally)
            except TRANSIENT as error:
                logger.warning("cleanup %s failed, retrying later: %s", self._pending[0], error)
                break
            except Exception:
                # Skipped rather than retried forever: what it left, the orphan sweep removes.
                logger.exception("cleanup %s failed; skipping it", self._pending[0])
            self._pending.popleft()
        if self._dry_run:
            self._pending.clear()  # reported once; a dry run records no progress
            return
        done_up_to = self._pending[0].before if self._pending else self._position
        if self._checkpoint is None or done_up_to > self._checkpoint:
            await self._coordination.save_checkpoint(done_up_to)
            self._checkpoint = done_up_to

    async def _report_lag(self) -> None:
        length = int(await self._redis.xlen(self._keys.global_stream))
        metrics.LOG_ENTRIES.set(length)
        unread = max(0, length - self._read)
        metrics.LAG_EVENTS.set(unread)
        oldest: StreamId | None = self._pending[0].event if self._pending else None
        if oldest is None and unread:
            first = await self._log.read(self._position, 1)
            oldest = first[0].stream_id if first else None
        metrics.LAG_SECONDS.set(0.0 if oldest is None else max(0.0, time.time() - oldest.ms / 1000))


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
