"""The executor: claims slices of batches (job_queue.py) and runs up to `max_concurrent_jobs`
at once, each a job.

Each running job's entry is kept fresh by a heartbeat. A job that ends (its slice done, the
batch ended) is acknowledged; a job taken over by another processor is left for its new owner
to acknowledge. A job that crashed is released for another try after a short back-off,
and once delivered more than `max_deliveries` times it is given up: one last delivery ends its
batch `failed` with the files of everything committed, and its entry is dead-lettered. A crash
in an outage (Redis, storage) is tried again without counting, and the executor itself backs
off through outages instead of exiting.

On shutdown the executor stops claiming and tells its jobs to hand over: they stop
dispatching, give in-flight requests `shutdown_grace_seconds`, commit their answers and
release their entries, which another processor claims at once. A job still running past that
bound is cancelled; its entry waits out the lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from batch_gateway.events import EventLog
from batch_gateway.events.aggregate_store import Decision
from batch_gateway.events.batch_aggregate import BatchState, batch_store
from batch_gateway.events.batch_events import BatchError, BatchFailed
from batch_gateway.logs import batch_context
from batch_gateway.processors.consumer_group import OUTAGES
from batch_gateway.processors.execution.job import JobContext, JobOutcome, run_job
from batch_gateway.processors.execution.job_activity import JobActivity, watch_stalled
from batch_gateway.processors.execution.job_queue import ClaimedJob, Describe, JobQueue, Opening
from batch_gateway.processors.metrics import JOB_SLOTS, JOBS_RUNNING, observe_queue_wait
from batch_gateway.task_endings import end_tasks

logger = logging.getLogger(__name__)

# A crashed job is tried again after 1, 2, 4, 8 s: a poison job fails within seconds.
RETRY_AFTER_MAX_SECONDS = 8.0
OUTAGE_BACKOFF_SECONDS = 1.0
# A handing-over job commits after its in-flight requests' grace: a commit's time on top.
HANDOVER_COMMIT_SECONDS = 10.0


@dataclass
class _Running:
    job: ClaimedJob
    activity: JobActivity
    giving_up: bool


class Executor:
    def __init__(self, queue: JobQueue, context: JobContext) -> None:
        self._queue = queue
        self._context = context
        self._running: dict[asyncio.Task[JobOutcome], _Running] = {}
        # The last crash seen here per batch: the reason a given-up batch reports.
        self._crashes: dict[str, str] = {}
        self._closed = asyncio.Event()
        watch_stalled(lambda: [running.activity for running in self._running.values()])

    async def run(self, stop: asyncio.Event) -> None:
        # Set here, not at construction: a processor that only validates has no job slots.
        JOB_SLOTS.set(self._context.settings.max_concurrent_jobs)
        heartbeat = asyncio.create_task(self._heartbeat(), name="executor-heartbeat")
        ready = False
        try:
            while not stop.is_set():
                try:
                    if not ready:
                        await self._queue.ensure()
                        ready = True
                    await self._step(block_ms=250)
                except OUTAGES as error:
                    logger.warning("executor backing off after: %s", error)
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(OUTAGE_BACKOFF_SECONDS):
                            await stop.wait()
        finally:
            await self._shutdown()
            self._closed.set()
            await end_tasks([heartbeat])

    async def drain(self) -> None:
        """Run every queued job to its end, then return (tests)."""
        await self._queue.ensure()
        while True:
            claimed = await self._step(block_ms=None)
            if not claimed and not self._running:
                return

    async def _step(self, block_ms: int | None) -> bool:
        claimed = False
        if len(self._running) < self._context.settings.max_concurrent_jobs:
            held = [running.job for running in self._running.values()]
            job = await self._queue.next(block_ms if not self._running else None, held)
            if job is not None:
                claimed = True
                await self._start(job)
        if self._running and not claimed:
            finished, _ = await asyncio.wait(
                list(self._running), timeout=0.25, return_when=asyncio.FIRST_COMPLETED
            )
            for task in finished:
                await self._reap(task)
        return claimed

    async def _start(self, job: ClaimedJob) -> None:
        if any(
            (running.job.stream, running.job.entry_id) == (job.stream, job.entry_id)
            for running in self._running.values()
        ):
            return  # our own entry, reclaimed after a late heartbeat: its job runs already
        group = self._queue.group(job)
        give_up: BatchError | None = None
        if group.is_poison(job.deliveries):
            tries = job.deliveries - 1
            crash = self._crashes.pop(job.batch_id, None)
            message = f"Processing the batch failed {tries} times" + (
                f"; the last error: {crash}." if crash else "."
            )
            if group.is_poison(tries):
                # Giving up crashed as well: fail the batch without its results.
                await self._fail(job.batch_id, message)
                await self._queue.dead_letter(job, f"delivered {job.deliveries} times")
                return
            give_up = BatchError(code="processing_failed", message=message)
        if job.deliveries == 1:
            observe_queue_wait(job.priority, job.entry_id)  # a first claim, not a takeover
        activity = JobActivity()
        task = asyncio.create_task(
            run_job(self._context, job.batch_id, job.slice, activity, give_up),
            name=f"job-{job.batch_id}-{job.slice}",
        )
        self._running[task] = _Running(job, activity, giving_up=give_up is not None)
        JOBS_RUNNING.set(len(self._running))

    async def _reap(self, task: asyncio.Task[JobOutcome]) -> None:
        running = self._running.pop(task)
        JOBS_RUNNING.set(len(self._running))
        job = running.job
        if task.cancelled():
            return  # cut off at shutdown: the entry waits out its lease
        error = task.exception()
        if error is not None:
            await self._retry_later(job, error)
            return
        outcome = task.result()
        if outcome == "ended":
            self._crashes.pop(job.batch_id, None)
            if running.giving_up:
                await self._queue.dead_letter(job, f"given up after {job.deliveries - 1} tries")
            else:
                await self._queue.done(job)
        elif outcome == "handed_over":
            await self._queue.release(job, after_seconds=0, counted=False)
        # "lost": another processor took the job over; its entry is now that one's.

    async def _retry_later(self, job: ClaimedJob, error: BaseException) -> None:
        outage = isinstance(error, OUTAGES)
        with batch_context(job.batch_id):
            logger.error(
                "job %s crashed (delivery %d)%s",
                job.batch_id,
                job.deliveries,
                " in an outage" if outage else "",
                exc_info=error,
            )
        if len(self._crashes) > 1000:
            self._crashes.clear()  # a hint for the error message, not worth unbounded memory
        self._crashes[job.batch_id] = f"{type(error).__name__}: {error}"
        # An outage is waited out for a lease, as if the job had been lost with its processor.
        lease = self._context.settings.lease_seconds
        after = (
            lease if outage else min(2.0 ** (job.deliveries - 1), RETRY_AFTER_MAX_SECONDS, lease)
        )
        with contextlib.suppress(*OUTAGES):  # then it waits out the lease instead
            await self._queue.release(job, after_seconds=after, counted=not outage)

    async def _heartbeat(self) -> None:
        interval = self._context.settings.lease_seconds / 3
        while not self._closed.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self._closed.wait()
            for running in list(self._running.values()):
                try:
                    await self._queue.heartbeat(running.job)
                except OUTAGES as error:
                    logger.warning("heartbeat failed: %s", error)
                    break

    async def _shutdown(self) -> None:
        self._context.draining.set()
        if not self._running:
            return
        bound = self._context.settings.shutdown_grace_seconds + HANDOVER_COMMIT_SECONDS
        logger.info("stopping: %d jobs hand over within %.1fs", len(self._running), bound)
        await asyncio.wait(list(self._running), timeout=bound)
        for task in [task for task in self._running if task.done()]:
            try:
                await self._reap(task)
            except OUTAGES as error:
                logger.warning("could not release a handed-over job: %s", error)
        await end_tasks(list(self._running))
        self._running.clear()
        JOBS_RUNNING.set(0)

    async def _fail(self, batch_id: str, message: str) -> None:
        async def fail(state: BatchState | None) -> Decision:
            if state is None or state.terminal:
                return Decision()
            failed = BatchFailed(
                failed_at=int(self._context.clock()),
                errors=[BatchError(code="processing_failed", message=message)],
            )
            return Decision([failed], state.tenant)

        _, recorded = await batch_store(self._context.log).update(batch_id, fail)
        if recorded:
            await self._context.secrets.delete(batch_id)


def batch_opening(log: EventLog) -> Describe:
    """What the job queue needs to open a batch, from the batch as the log has it."""
    store = batch_store(log)

    async def describe(batch_id: str) -> Opening | None:
        state, _ = await store.load(batch_id)
        if state is None or state.terminal or state.status == "validating":
            return None
        return Opening(state.tenant, state.slice_count)

    return describe
