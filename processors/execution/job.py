"""Running one slice of a batch: claim, resume, dispatch, commit chunks, stop, and finalize
the batch when it was the last slice to be done (ADR 0030).

A job reads its slice of the input file once (streamed; requests already committed by an earlier
owner are skipped), sends each request to its model's gateway through the dispatcher under a
window of `max_in_flight`, and buffers result lines for the committer, which commits a chunk
every `commit_interval_seconds`, or earlier when it is full or half the window awaits its
commit. A request keeps its window slot until its result is committed, so a crash loses the
results of at most `max_in_flight` requests: all that a new owner sends again. A watcher reloads
the batch four times a second: a cancel request or the end of the completion window stops new
dispatches at once, in-flight requests get `cancel_grace_seconds`, and every request without a
result gets a `batch_cancelled` / `batch_expired` line. Then the job finalizes into OpenAI's
files. When its processor stops (`JobContext.draining`), the job stops dispatching the same way,
gives in-flight requests `shutdown_grace_seconds`, commits what they answered and hands the
batch over: another processor resumes it without sending any of those again.

A slice given up after crashing processors repeatedly (`give_up`) sends nothing: every request
of it without a result gets a `processing_failed` line, and the batch ends `failed` with the
files of what was committed. One request that cannot be sent fails its own line, never its job.
Helper tasks end when the job does (`_over`), not on a delivered cancellation alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Literal

from batch_gateway.clock import Clock
from batch_gateway.events import EventLog
from batch_gateway.events.batch_aggregate import BatchState, batch_store
from batch_gateway.events.batch_events import BatchError as BatchErrorItem
from batch_gateway.events.batch_events import BatchFailed, BatchSliceDone
from batch_gateway.events.file_aggregate import file_store
from batch_gateway.logs import batch_context, request_context
from batch_gateway.processors.execution.chunks import ChunkSink, committed_custom_ids
from batch_gateway.processors.execution.dispatch import Dispatcher
from batch_gateway.processors.execution.downstream import send_downstream
from batch_gateway.processors.execution.fair_share import Flow
from batch_gateway.processors.execution.finalize import end_batch
from batch_gateway.processors.execution.job_activity import JobActivity
from batch_gateway.processors.execution.ownership import LostJob, Ownership
from batch_gateway.processors.execution.prefix_order import prefix_ordered
from batch_gateway.processors.execution.priority import DEFAULT_PRIORITY
from batch_gateway.processors.execution.routing import Routes
from batch_gateway.processors.metrics import RequestMetrics, job_phase
from batch_gateway.processors.settings import ProcessorSettings
from batch_gateway.results.requests import Request, requests_of
from batch_gateway.results.result_lines import ResultLine, unanswered
from batch_gateway.results.stop_lines import StoppedFor, stop_line
from batch_gateway.secret_store import SecretStore
from batch_gateway.storage import ObjectStorage
from batch_gateway.task_endings import end_tasks
from batch_gateway.tracing import AttributeValue, span

logger = logging.getLogger(__name__)

WATCH_INTERVAL_SECONDS = 0.25
# Why a job stops dispatching before its requests are done; None when another processor took
# it over.
StopReason = StoppedFor | Literal["handover"]
JobOutcome = Literal["ended", "lost", "handed_over"]


@dataclass(frozen=True)
class JobContext:
    log: EventLog
    storage: ObjectStorage
    dispatcher: Dispatcher
    routes: Routes
    secrets: SecretStore
    settings: ProcessorSettings
    clock: Clock
    processor: str
    # Set when the processor stops: every job hands its batch over (see the module doc).
    draining: asyncio.Event = field(default_factory=asyncio.Event)


class HandedOver(Exception):
    """The job stopped for its processor's shutdown, with everything answered committed."""


async def run_job(
    context: JobContext,
    batch_id: str,
    slice_number: int = 0,
    activity: JobActivity | None = None,
    give_up: BatchErrorItem | None = None,
) -> JobOutcome:
    """Work on the batch's slice until it is done ("ended", also when there was nothing to do),
    another processor takes it over ("lost": its entry is then not ours to acknowledge), or the
    processor stops ("handed_over"). With `give_up`, end the slice failed with that error at
    once (and so the batch)."""
    with batch_context(batch_id):
        return await _run_job(context, batch_id, slice_number, activity or JobActivity(), give_up)


async def _run_job(
    context: JobContext,
    batch_id: str,
    slice_number: int,
    activity: JobActivity,
    give_up: BatchErrorItem | None,
) -> JobOutcome:
    store = batch_store(context.log)
    ownership = await Ownership.claim_slice(
        store, batch_id, slice_number, context.processor, int(context.clock())
    )
    if ownership is None:
        return "ended"
    # A child of the create call, however long ago and on whichever processor it ran.
    attributes: dict[str, AttributeValue] = {
        "batch_gateway.batch_id": batch_id,
        "batch_gateway.slice": slice_number,
        "batch_gateway.claim": ownership.claim,
    }
    with (
        request_context(ownership.state.request_id),
        span("batch.execute", parent=ownership.state.trace_context, attributes=attributes) as job,
    ):
        try:
            await _Job(context, ownership, activity, give_up).run()
        except LostJob:
            job.set_attribute("batch_gateway.taken_over", True)
            logger.info("batch %s was taken over by another processor; letting go", batch_id)
            return "lost"
        except HandedOver:
            job.set_attribute("batch_gateway.handed_over", True)
            logger.info("batch %s handed over: its processor is stopping", batch_id)
            return "handed_over"
    return "ended"


class _Job:
    def __init__(
        self,
        context: JobContext,
        ownership: Ownership,
        activity: JobActivity,
        give_up: BatchErrorItem | None,
    ) -> None:
        self._context = context
        self._ownership = ownership
        self._activity = activity
        self._give_up = give_up
        self._sink = ChunkSink(context.storage, ownership, context.settings.chunk_size)
        self._stop = asyncio.Event()
        self._reason: StopReason | None = None
        self._lost = False
        # Something other than a request failed in a request's task (a bug): no line for it.
        self._failure: BaseException | None = None
        self._finished = asyncio.Event()
        # The job's end: its watcher and committer loops watch it, whether or not the
        # cancellation that follows reaches them (core/task_endings.py).
        self._over = asyncio.Event()
        self._window = asyncio.Semaphore(context.settings.max_in_flight)
        self._in_flight: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()
        self._done: set[str] = set()
        self._headers: dict[str, str] = {}
        state = ownership.state
        self._flow = Flow(state.priority or DEFAULT_PRIORITY, state.tenant, state.id)

    @property
    def state(self) -> BatchState:
        return self._ownership.state

    async def run(self) -> None:
        if self.state.all_slices_done or self.state.status == "finalizing":
            # Only the slice that completed the set gets this far (`claim_slice`): its earlier
            # owner died finalizing.
            with self._phase("finalize"):
                await self._finish()
            return
        context = self._context
        with self._phase("plan"):
            input_key = await self._input_key()
            if input_key is not None:
                self._done = await committed_custom_ids(
                    self.state, context.storage, self._ownership.slice
                )
                self._headers = await context.secrets.get(self.state.id, self.state.tenant)
        if input_key is None:
            await self._fail(
                "invalid_input_file", "The input file was deleted before the batch ran."
            )
            return
        if self._give_up is not None:
            with self._phase("finalize"):
                await self._end_given_up(input_key)
            return
        # Before the first request: a batch claimed past its window sends nothing.
        self._check(self.state)
        # Requests, the watcher and the committer are tasks started within this span, and so
        # its children: each request's client span, each progress event's trace context.
        with self._phase("dispatch"):
            await self._dispatch_and_commit(input_key)
        await self._slice_done()

    @contextlib.contextmanager
    def _phase(self, name: str) -> Iterator[None]:
        self._activity.step()
        with job_phase(name), span(f"batch.{name}"):
            yield

    async def _dispatch_and_commit(self, input_key: str) -> None:
        watcher = asyncio.create_task(self._watch(), name=f"watch-{self.state.id}")
        committer = asyncio.create_task(self._commit_loop(), name=f"commit-{self.state.id}")
        try:
            await self._dispatch_all(input_key)
            if self._failure is not None:
                raise self._failure  # the job crashes and is retried, rather than lose a line
            if committer.done():
                await committer  # it failed: raise why
            if self._lost:
                raise LostJob(self.state.id)
            if self._reason is not None and self._reason != "handover":
                await self._mark_unexecuted(input_key, self._reason)
            self._finished.set()
            await committer  # commits what is left, raises LostJob if it happened
            if self._reason == "handover":
                raise HandedOver(self.state.id)
        finally:
            self._over.set()
            await end_tasks([watcher, committer, *self._in_flight])

    async def _end_given_up(self, input_key: str) -> None:
        """Send nothing more: what has no result gets a `processing_failed` line, and the
        batch ends failed with the files of everything committed."""
        self._reason = "failed"
        await self._mark_unexecuted(input_key, "failed")
        await self._sink.commit()
        await self._slice_done()

    async def _slice_done(self) -> None:
        """Record the slice done; the slice that completes the set finalizes the batch."""
        ownership = self._ownership
        stopped_for = None if self._reason == "handover" else self._reason
        done = BatchSliceDone(
            slice=ownership.slice,
            done_at=int(self._context.clock()),
            stopped_for=stopped_for,
            errors=[self._give_up] if self._give_up is not None else [],
        )
        state = await ownership.update(lambda _: [done])
        if state.finalizer_slice == ownership.slice:
            with self._phase("finalize"):
                await self._finish()

    async def _input_key(self) -> str | None:
        files = file_store(self._context.log)
        file_state, _ = await files.load(self.state.input_file_id)
        if file_state is None or file_state.lifecycle != "active":
            return None
        return file_state.storage_key

    async def _dispatch_all(self, input_key: str) -> None:
        await self._dispatch_each(input_key)
        if self._in_flight and not self._stop.is_set():
            # Every request is sent or waiting for a slot: wait for the answers, unless a
            # cancel or the window's end comes first (then the grace below applies).
            idle = asyncio.create_task(self._idle.wait())
            stopping = asyncio.create_task(self._stop.wait())
            await asyncio.wait([idle, stopping], return_when=asyncio.FIRST_COMPLETED)
            await end_tasks([idle, stopping])
        if self._in_flight:
            # Stopping: in-flight requests get a grace period, then are aborted.
            settings = self._context.settings
            grace = (
                settings.shutdown_grace_seconds
                if self._reason == "handover"
                else settings.cancel_grace_seconds
            )
            await asyncio.wait(list(self._in_flight), timeout=grace)
            await end_tasks(list(self._in_flight))

    def _requests(self, input_key: str) -> AsyncIterator[Request]:
        """The slice's requests that have no committed result, whatever their model."""
        number = self._ownership.slice
        first, end = self.state.slice_range(number)
        storage, skip, offset = (
            self._context.storage,
            set(self._done),
            self.state.slice_offset(number),
        )
        return requests_of(storage, input_key, skip=skip, first=first, end=end, offset=offset)

    async def _dispatch_each(self, input_key: str) -> None:
        # One pass over the slice for every model: each request goes to its model's gateway
        # as it is read (ADR 0031).
        requests = self._requests(input_key)
        ordered = prefix_ordered(requests, self._context.settings.prefix_order_bytes)
        async for request in ordered:
            await self._window.acquire()
            if self._stop.is_set():
                self._window.release()
                return
            task = asyncio.create_task(self._send(request))
            self._idle.clear()
            self._in_flight.add(task)
            self._activity.in_flight = len(self._in_flight)
            self._activity.step()
            task.add_done_callback(self._untrack)

    def _untrack(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._activity.in_flight = len(self._in_flight)
        self._activity.step()
        if not task.cancelled() and task.exception() is not None and self._failure is None:
            self._failure = task.exception()
            self._halt(None)
        if not self._in_flight:
            self._idle.set()

    async def _send(self, request: Request) -> None:
        buffered = False
        try:
            try:
                line = await self._result_of(request)
            except Exception as error:
                # A poison request (a value aiohttp refuses in a header, a bug it triggers)
                # fails its own line; raised, it would crash the job on every retry.
                logger.exception("request %r could not be sent", request.custom_id)
                line = unanswered(
                    request.custom_id,
                    "request_failed",
                    f"The request could not be sent: {type(error).__name__}: {error}",
                )
                RequestMetrics(request.model).finished(line)
            if line is None:
                return  # stopped before it was sent: it gets a cancelled/expired line
            self._sink.add(line)
            self._done.add(request.custom_id)
            buffered = True
        finally:
            # A buffered result keeps its window slot until its chunk is committed
            # (`_commit`): a crash loses at most the window, which is all a new owner resends.
            if not buffered:
                self._window.release()

    async def _result_of(self, request: Request) -> ResultLine | None:
        context = self._context
        return await send_downstream(
            context.dispatcher,
            context.routes,
            self.state,
            request,
            self._headers,
            context.clock(),
            stop=self._stop,
            flow=self._flow,
        )

    async def _mark_unexecuted(self, input_key: str, stopped_for: StoppedFor) -> None:
        async for request in self._requests(input_key):
            self._sink.add(stop_line(request.custom_id, stopped_for))
            self._done.add(request.custom_id)

    async def _commit_loop(self) -> None:
        interval = self._context.settings.commit_interval_seconds
        # Uncommitted results hold window slots: commit before they stall dispatch.
        early = max(1, self._context.settings.max_in_flight // 2)
        elapsed = 0.0
        try:
            while not (self._finished.is_set() or self._over.is_set()):
                await self._pause(0.05)
                elapsed += 0.05
                if self._sink.full or self._sink.pending >= early or elapsed >= interval:
                    await self._commit()
                    elapsed = 0.0
            if self._finished.is_set():
                await self._commit()
        except Exception:
            # Without commits no window slot comes free: stop dispatching, and let `run` raise
            # what stopped the committer (LostJob, or a failure the job is retried after).
            self._halt(None)
            raise

    async def _commit(self) -> None:
        committed = await self._sink.commit()
        if committed:
            self._activity.step()
        for _ in range(committed):
            self._window.release()

    async def _watch(self) -> None:
        while not self._over.is_set():
            try:
                state = await self._ownership.refresh()
            except LostJob:
                self._halt(None)  # another processor has it: stop sending at once
                return
            except Exception as error:
                # Unwatched, a cancel would go unseen: the job crashes and is tried again.
                self._failure = self._failure or error
                self._halt(None)
                raise
            self._check(state)
            await self._pause(WATCH_INTERVAL_SECONDS)

    async def _pause(self, seconds: float) -> None:
        """Sleep, but not past the job's end."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._over.wait()

    def _check(self, state: BatchState) -> None:
        """Stop dispatching when a cancel was requested, the completion window has ended, or
        the processor is stopping."""
        if state.status == "cancelling":
            self._halt("cancelled")
        elif self._context.clock() >= state.expires_at:
            self._halt("expired")
        elif self._context.draining.is_set():
            self._halt("handover")

    def _halt(self, reason: StopReason | None) -> None:
        """Stop dispatching, for `reason`, or (None) because the job was lost."""
        if self._stop.is_set():
            return
        logger.info("batch %s %s: stopping dispatch", self.state.id, reason or "lost")
        self._reason = reason
        self._lost = reason is None
        self._stop.set()
        # Unblock readers waiting for a window slot: they see the stop and return.
        for _ in range(self._context.settings.max_in_flight):
            self._window.release()

    async def _finish(self) -> None:
        context = self._context
        await end_batch(
            self._ownership,
            self.state.stopped_for,
            log=context.log,
            storage=context.storage,
            secrets=context.secrets,
            now=int(context.clock()),
            default_expiry=context.settings.output_expiry_seconds,
            errors=self.state.slice_errors,
        )

    async def _fail(self, code: str, message: str) -> None:
        now = int(self._context.clock())
        await self._ownership.append(
            [BatchFailed(failed_at=now, errors=[BatchErrorItem(code=code, message=message)])]
        )
        await self._context.secrets.delete(self.state.id)
