"""Batch events: every state change of a batch job, as frozen tagged msgspec Structs.

Tags are public names and never renamed; see `types.py` for how schemas evolve. Nothing here
carries a secret: pass-through headers live in the secret store (`gateway/secrets.py`), never in
the log.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import msgspec


class RequestCounts(msgspec.Struct, frozen=True, kw_only=True):
    total: int = 0
    completed: int = 0
    failed: int = 0


class Usage(msgspec.Struct, frozen=True, kw_only=True):
    """Token usage summed over every response of a batch, as OpenAI reports it."""

    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    total_tokens: int = 0


class BatchError(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    message: str
    param: str | None = None
    line: int | None = None


class BatchCreated(msgspec.Struct, frozen=True, kw_only=True, tag="batch.created"):
    schema_version: ClassVar[int] = 1

    input_file_id: str
    endpoint: str
    completion_window: str
    created_at: int
    expires_at: int
    metadata: dict[str, str] | None = None
    # Seconds after completion that output files live; None means the default.
    output_expires_after_seconds: int | None = None
    # Names of the pass-through headers captured for this batch (values are in the secret store).
    pass_through_headers: list[str] = msgspec.field(default_factory=list)


class BatchValidated(msgspec.Struct, frozen=True, kw_only=True, tag="batch.validated"):
    """The input file is valid; the job is queued under `priority` and the batch is in progress."""

    schema_version: ClassVar[int] = 1

    validated_at: int
    total: int
    models: list[str]
    priority: str
    # Requests per slice: slices are claimed, leased and committed independently, so several
    # processors work one batch (ADR 0030). None (older batches): one slice holds them all.
    slice_size: int | None = None
    # Where each slice's first request begins in the input file, in bytes: a processor reads
    # its slice from there instead of splitting every line before it (ADR 0031). Empty (older
    # batches, one slice): read from the start.
    slice_offsets: list[int] = msgspec.field(default_factory=list)


class BatchInProgress(msgspec.Struct, frozen=True, kw_only=True, tag="batch.in_progress"):
    """A processor claimed a slice of the job (again, after a crash, when `attempt` > 1)."""

    schema_version: ClassVar[int] = 1

    claimed_at: int
    processor: str
    attempt: int = 1
    slice: int = 0


class BatchSliceDone(msgspec.Struct, frozen=True, kw_only=True, tag="batch.slice_done"):
    """Every request of a slice has a committed result. `stopped_for` says why some were not
    executed (a cancel, the window's end, a slice given up after crashing processors, with
    `errors`); the slice that completes the set finalizes the batch."""

    schema_version: ClassVar[int] = 1

    slice: int
    done_at: int
    stopped_for: Literal["cancelled", "expired", "failed"] | None = None
    errors: list[BatchError] = msgspec.field(default_factory=list)


class BatchProgress(msgspec.Struct, frozen=True, kw_only=True, tag="batch.progress"):
    """A chunk of results is committed; counts and usage are cumulative."""

    schema_version: ClassVar[int] = 1

    request_counts: RequestCounts
    usage: Usage
    # The committed chunk's name (see storage/keys.py: result_chunk_key); None when a
    # progress event commits no results of its own.
    chunk: str | None = None


class BatchFinalizing(msgspec.Struct, frozen=True, kw_only=True, tag="batch.finalizing"):
    schema_version: ClassVar[int] = 1

    finalizing_at: int


class BatchCompleted(msgspec.Struct, frozen=True, kw_only=True, tag="batch.completed"):
    schema_version: ClassVar[int] = 1

    completed_at: int
    request_counts: RequestCounts
    usage: Usage
    output_file_id: str | None = None
    error_file_id: str | None = None


class BatchFailed(msgspec.Struct, frozen=True, kw_only=True, tag="batch.failed"):
    schema_version: ClassVar[int] = 1

    failed_at: int
    errors: list[BatchError]
    # A job given up after crashing repeatedly ends failed but keeps what it committed: its
    # results go into files as on any other ending (a validation failure has none of these).
    request_counts: RequestCounts | None = None
    usage: Usage | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None


class BatchCancelRequested(msgspec.Struct, frozen=True, kw_only=True, tag="batch.cancel_requested"):
    schema_version: ClassVar[int] = 1

    cancelling_at: int


class BatchCancelled(msgspec.Struct, frozen=True, kw_only=True, tag="batch.cancelled"):
    schema_version: ClassVar[int] = 1

    cancelled_at: int
    request_counts: RequestCounts | None = None
    usage: Usage | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None


class BatchExpired(msgspec.Struct, frozen=True, kw_only=True, tag="batch.expired"):
    schema_version: ClassVar[int] = 1

    expired_at: int
    request_counts: RequestCounts | None = None
    usage: Usage | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None


BatchEvent = (
    BatchCreated
    | BatchValidated
    | BatchInProgress
    | BatchProgress
    | BatchSliceDone
    | BatchFinalizing
    | BatchCompleted
    | BatchFailed
    | BatchCancelRequested
    | BatchCancelled
    | BatchExpired
)

BATCH_EVENT_CLASSES: tuple[type[BatchEvent], ...] = (
    BatchCreated,
    BatchValidated,
    BatchInProgress,
    BatchProgress,
    BatchSliceDone,
    BatchFinalizing,
    BatchCompleted,
    BatchFailed,
    BatchCancelRequested,
    BatchCancelled,
    BatchExpired,
)
