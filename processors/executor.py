"""The executor: claims jobs by priority and runs up to `max_concurrent_jobs` at once.

Each running job's entry is kept fresh by a heartbeat; a job that ends (completed, cancelled,
expired, failed) is acknowledged; a job taken over by another processor is left for its new
owner to acknowledge; a job that crashed stays pending and is retried after the lease, until
it has been delivered more than `max_deliveries` times and is dead-lettered with its batch
failed. On shutdown the executor stops claiming, gives running jobs a grace period, then
cancels them: what they committed stays committed, and another processor resumes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from batch_gateway.events.aggregate_store import AggregateStore
from batch_gateway.events.batch_aggregate import evolve_batch
from batch_gateway.events.batch_events import BatchError, BatchFailed
from batch_gateway.events.log import VersionConflict
from batch_gateway.logs import batch_context
from batch_gateway.processors.job import JobContext, run_job
from batch_gateway.processors.job_queue import ClaimedJob, JobQueue
from batch_gateway.processors.metrics import JOB_SLOTS, JOBS_RUNNING, observe_queue_wait

logger = logging.getLogger(__name__)


class Executor:
    def __init__(self, queue: JobQueue, context: JobContext) -> None:
        self._queue = queue
        self._context = context
        self._running: dict[asyncio.Task[bool], ClaimedJob] = {}

    async def run(self, stop: asyncio.Event) -> None:
        # Set here, not at construction: a processor that only validates has no job slots.
        JOB_SLOTS.set(self._context.settings.max_concurrent_jobs)
        await self._queue.ensure()
        heartbeat = asyncio.create_task(self._heartbeat(), name="executor-heartbeat")
        try:
            while not stop.is_set():
                await self._step(block_ms=250)
        finally:
            await self._shutdown()
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat

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
            job = await self._queue.next(block_ms if not self._running else None)
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
            (running.priority, running.entry_id) == (job.priority, job.entry_id)
            for running in self._running.values()
        ):
            return  # our own entry, reclaimed after a late heartbeat: its job runs already
        if self._queue.group(job.priority).is_poison(job.deliveries):
            await self._fail(job.batch_id, f"Processing failed {job.deliveries} times.")
            await self._queue.dead_letter(job, f"delivered {job.deliveries} times")
            return
        if job.deliveries == 1:
            observe_queue_wait(job.priority, job.entry_id)  # a first claim, not a takeover
        task = asyncio.create_task(run_job(self._context, job.batch_id), name=f"job-{job.batch_id}")
        self._running[task] = job
        JOBS_RUNNING.set(len(self._running))

    async def _reap(self, task: asyncio.Task[bool]) -> None:
        job = self._running.pop(task)
        JOBS_RUNNING.set(len(self._running))
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            # Left pending: retried after the lease, dead-lettered after too many deliveries.
            with batch_context(job.batch_id):
                logger.error("job %s crashed", job.batch_id, exc_info=error)
        elif task.result():
            await self._queue.done(job)
        # Otherwise another processor took the job over: its entry is now that one's.

    async def _heartbeat(self) -> None:
        interval = self._context.settings.lease_seconds / 3
        while True:
            await asyncio.sleep(interval)
            for job in list(self._running.values()):
                await self._queue.heartbeat(job)

    async def _shutdown(self) -> None:
        if not self._running:
            return
        grace = self._context.settings.shutdown_grace_seconds
        logger.info("stopping: %d jobs get %.1fs to finish", len(self._running), grace)
        await asyncio.wait(list(self._running), timeout=grace)
        for task in list(self._running):
            if task.done():
                await self._reap(task)
            else:
                task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)
        self._running.clear()
        JOBS_RUNNING.set(0)

    async def _fail(self, batch_id: str, message: str) -> None:
        store = AggregateStore(self._context.log, evolve_batch)
        for _ in range(3):
            state, version = await store.load(batch_id)
            if state is None or state.terminal:
                return
            failed = BatchFailed(
                failed_at=int(self._context.clock()),
                errors=[BatchError(code="processing_failed", message=message)],
            )
            try:
                await store.append(batch_id, state.tenant, state, version, [failed])
            except VersionConflict:
                continue
            await self._context.secrets.delete(batch_id)
            return
