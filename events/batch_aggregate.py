"""The batch aggregate: its state machine, and what its events add up to.

    validating ──validated──▶ in_progress ──finalizing──▶ finalizing ──completed──▶ completed
        │  └─────────failed──────┴───────────────────────────┴──────────────▶ failed
        ├──cancel_requested──▶ cancelling ──cancelled──▶ cancelled
        └──expired (also from in_progress)──▶ expired

A batch that no processor has claimed yet is cancelled in one step (cancel_requested and
cancelled appended together).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import msgspec

from batch_gateway.errors import Conflict
from batch_gateway.events.aggregate_store import AggregateStore
from batch_gateway.events.batch_events import (
    BatchCancelled,
    BatchCancelRequested,
    BatchCompleted,
    BatchCreated,
    BatchError,
    BatchEvent,
    BatchExpired,
    BatchFailed,
    BatchFinalizing,
    BatchInProgress,
    BatchProgress,
    BatchSliceDone,
    BatchValidated,
    RequestCounts,
    Usage,
)
from batch_gateway.events.chunk_runs import ChunkRun, chunk_names, with_chunk
from batch_gateway.events.envelope import Envelope

BatchStatus = Literal[
    "validating",
    "failed",
    "in_progress",
    "finalizing",
    "completed",
    "expired",
    "cancelling",
    "cancelled",
]
StoppedFor = Literal["cancelled", "expired", "failed"]
TERMINAL: frozenset[BatchStatus] = frozenset({"failed", "completed", "expired", "cancelled"})

# Which event may follow which status; anything else is rejected before it is appended.
_ALLOWED: dict[BatchStatus, tuple[type[BatchEvent], ...]] = {
    "validating": (BatchValidated, BatchFailed, BatchCancelRequested, BatchExpired),
    "in_progress": (
        BatchInProgress,
        BatchProgress,
        BatchSliceDone,
        BatchFinalizing,
        BatchFailed,
        BatchCancelRequested,
        BatchExpired,
    ),
    "cancelling": (BatchInProgress, BatchProgress, BatchSliceDone, BatchCancelled, BatchFailed),
    "finalizing": (BatchInProgress, BatchCompleted, BatchFailed),
}

if TYPE_CHECKING:
    from batch_gateway.events.log import EventLog


_ENDED_AS: dict[type, BatchStatus] = {
    BatchCancelled: "cancelled",
    BatchExpired: "expired",
    BatchFailed: "failed",
}


class IllegalTransition(Conflict):
    default_code = "invalid_state_transition"


class BatchState(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    tenant: str
    status: BatchStatus
    input_file_id: str
    endpoint: str
    completion_window: str
    created_at: int
    expires_at: int
    metadata: dict[str, str] | None
    output_expires_after_seconds: int | None
    pass_through_headers: list[str]
    models: list[str] = msgspec.field(default_factory=list)
    priority: str | None = None
    claims: int = 0
    request_counts: RequestCounts = msgspec.field(default_factory=RequestCounts)
    usage: Usage = msgspec.field(default_factory=Usage)
    errors: list[BatchError] = msgspec.field(default_factory=list)
    output_file_id: str | None = None
    error_file_id: str | None = None
    # The result chunks committed so far, in order, as runs of names (events/chunk_runs.py).
    chunk_runs: list[ChunkRun] = msgspec.field(default_factory=list)
    # The W3C trace context of the create call (`traceparent`, `tracestate`), which the
    # validator and the processors continue; empty when it was not traced.
    trace_context: dict[str, str] = msgspec.field(default_factory=dict)
    # The `x-request-id` of the create call, which the processors' log lines name.
    request_id: str | None = None
    # Slices (ADR 0030): requests per slice (None: one slice), each slice's claim number, the
    # slices done, and the slice whose completion made them all done: it finalizes the batch.
    slice_size: int | None = None
    slice_offsets: list[int] = msgspec.field(default_factory=list)
    slice_claims: dict[int, int] = msgspec.field(default_factory=dict)
    slices_done: frozenset[int] = frozenset()
    finalizer_slice: int | None = None
    # Why some slice stopped sending (the strongest reason: failed, expired, cancelled), and
    # the errors of slices given up.
    stopped_for: StoppedFor | None = None
    slice_errors: list[BatchError] = msgspec.field(default_factory=list)

    @property
    def chunks(self) -> list[str]:
        """The names of the result chunks committed so far, in order."""
        return list(chunk_names(self.chunk_runs))

    @property
    def slice_count(self) -> int:
        total = self.request_counts.total
        if not self.slice_size or total <= self.slice_size:
            return 1
        return -(-total // self.slice_size)

    def slice_range(self, number: int) -> tuple[int, int | None]:
        """The requests of slice `number`: [first, end) in the file's order of requests
        (blank lines do not count); end None: to the end of the file."""
        if self.slice_count == 1:
            return 0, None
        assert self.slice_size is not None
        return number * self.slice_size, (number + 1) * self.slice_size

    def slice_offset(self, number: int) -> int:
        """Where slice `number`'s first request begins in the input file, in bytes; 0 when
        unknown (then its reader starts at the file's start and counts requests)."""
        return self.slice_offsets[number] if number < len(self.slice_offsets) else 0

    @property
    def all_slices_done(self) -> bool:
        return len(self.slices_done) >= self.slice_count

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def started(self) -> bool:
        """Whether a processor has claimed the job (so cancelling needs its cooperation)."""
        return self.claims > 0


def evolve_batch(state: BatchState | None, envelope: Envelope) -> BatchState:
    event = envelope.event
    if state is None:
        if isinstance(event, BatchCreated):
            return _created(envelope, event)
        raise IllegalTransition(f"{_name(event)} cannot start a batch")
    if not isinstance(event, _ALLOWED.get(state.status, ())):
        raise IllegalTransition(
            f"{_name(event)} is not allowed for a batch with status '{state.status}'"
        )
    replace = msgspec.structs.replace
    match event:
        case BatchValidated():
            models = list(event.models)
            return replace(
                state,
                status="in_progress",
                models=models,
                priority=event.priority,
                request_counts=RequestCounts(total=event.total),
                slice_size=event.slice_size,
                slice_offsets=list(event.slice_offsets),
            )
        case BatchInProgress():
            slice_claims = dict(state.slice_claims)
            slice_claims[event.slice] = slice_claims.get(event.slice, 0) + 1
            return replace(state, claims=state.claims + 1, slice_claims=slice_claims)
        case BatchSliceDone():
            done = state.slices_done | {event.slice}
            finishing = len(done) >= state.slice_count and state.finalizer_slice is None
            return replace(
                state,
                slices_done=done,
                finalizer_slice=event.slice if finishing else state.finalizer_slice,
                stopped_for=_stronger(state.stopped_for, event.stopped_for),
                slice_errors=[*state.slice_errors, *event.errors],
            )
        case BatchProgress():
            runs = with_chunk(state.chunk_runs, event.chunk) if event.chunk else state.chunk_runs
            return replace(
                state, request_counts=event.request_counts, usage=event.usage, chunk_runs=runs
            )
        case BatchFinalizing():
            return replace(state, status="finalizing")
        case BatchCompleted():
            return replace(
                state,
                status="completed",
                request_counts=event.request_counts,
                usage=event.usage,
                output_file_id=event.output_file_id,
                error_file_id=event.error_file_id,
            )
        case BatchCancelRequested():
            return replace(state, status="cancelling")
        case BatchCancelled() | BatchExpired() | BatchFailed():
            errors = list(event.errors) if isinstance(event, BatchFailed) else state.errors
            return replace(
                state,
                status=_ENDED_AS[type(event)],
                errors=errors,
                request_counts=event.request_counts or state.request_counts,
                usage=event.usage or state.usage,
                output_file_id=event.output_file_id,
                error_file_id=event.error_file_id,
            )
    raise IllegalTransition(f"{_name(event)} does not apply to a batch")


_STRENGTH: dict[StoppedFor | None, int] = {None: 0, "cancelled": 1, "expired": 2, "failed": 3}


def _stronger(held: StoppedFor | None, new: StoppedFor | None) -> StoppedFor | None:
    """A batch with a slice given up ends failed, else one that met its window's end expired."""
    return new if _STRENGTH[new] > _STRENGTH[held] else held


def _created(envelope: Envelope, event: BatchCreated) -> BatchState:
    return BatchState(
        id=envelope.aggregate_id,
        tenant=envelope.tenant,
        status="validating",
        input_file_id=event.input_file_id,
        endpoint=event.endpoint,
        completion_window=event.completion_window,
        created_at=event.created_at,
        expires_at=event.expires_at,
        metadata=event.metadata,
        output_expires_after_seconds=event.output_expires_after_seconds,
        pass_through_headers=list(event.pass_through_headers),
        trace_context=envelope.trace_context,
        request_id=envelope.request_id,
    )


def _name(event: object) -> str:
    return str(type(event).__struct_config__.tag)  # type: ignore[attr-defined]


def batch_store(log: EventLog) -> AggregateStore[BatchState]:
    """The batches of `log`, loaded from their snapshots."""
    return AggregateStore(log, evolve_batch, BatchState, ended=lambda state: state.terminal)
