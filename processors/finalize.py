"""Ending a batch: its committed chunks turned into OpenAI's output and error files,
idempotently, then its terminal event.

The files get ids derived from the batch id, so a processor that re-finalizes after a crash
(or after losing the job mid-way) writes the same bytes under the same key and finds the
file event already appended: no duplicate files, nothing half-made visible. A kind with no
lines gets no file (its id stays null), as at OpenAI.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Sequence

from batch_gateway.events import EventLog, FileUploaded, VersionConflict
from batch_gateway.events.batch_aggregate import BatchState
from batch_gateway.events.batch_events import (
    BatchCancelled,
    BatchCompleted,
    BatchError,
    BatchExpired,
    BatchFailed,
    BatchFinalizing,
)
from batch_gateway.processors.chunks import committed_lines
from batch_gateway.processors.ownership import Ownership
from batch_gateway.processors.result_lines import LineCounter
from batch_gateway.secret_store import SecretStore
from batch_gateway.storage import ObjectStorage, file_object_key, result_chunk_key

logger = logging.getLogger(__name__)

_FILENAMES = {"output": "{}_output.jsonl", "errors": "{}_error.jsonl"}


def result_file_id(batch_id: str, kind: str) -> str:
    return "file-" + hashlib.sha256(f"{batch_id}:{kind}".encode()).hexdigest()[:24]


async def write_result_file(
    log: EventLog,
    storage: ObjectStorage,
    state: BatchState,
    kind: str,
    created_at: int,
    expiry_seconds: int,
) -> str | None:
    """Write the batch's `kind` file from its committed chunks; its id, or None if empty."""
    file_id = result_file_id(state.id, kind)
    key = file_object_key(state.tenant, file_id)
    counter = LineCounter()
    lines = committed_lines(storage, state.tenant, state.id, state.chunks, kind)
    size = await storage.write(key, counter.count(lines))
    if size == 0:
        await storage.delete(key)
        return None
    event = FileUploaded(
        filename=_FILENAMES[kind].format(state.id),
        purpose="batch_output",
        bytes=size,
        created_at=created_at,
        expires_at=created_at + expiry_seconds,
        storage_key=key,
        line_count=counter.lines,
    )
    # A conflict means an earlier finalize of this batch made the file, from the same chunks.
    with contextlib.suppress(VersionConflict):
        await log.append(file_id, state.tenant, 0, [event])
    return file_id


async def remove_chunks(storage: ObjectStorage, state: BatchState) -> None:
    """Once the files exist, the chunks are copies: remove them."""
    for chunk in state.chunks:
        for kind in _FILENAMES:
            await storage.delete(result_chunk_key(state.tenant, state.id, chunk, kind))


async def end_batch(
    ownership: Ownership,
    stopped_for: str | None,
    *,
    log: EventLog,
    storage: ObjectStorage,
    secrets: SecretStore,
    now: int,
    default_expiry: int,
    errors: Sequence[BatchError] = (),
) -> BatchState:
    """Finalize the owned batch: its files, then `batch.completed`, or `batch.cancelled` /
    `batch.expired` when dispatch was stopped for that (or a cancel is pending), or
    `batch.failed` with `errors` when the job was given up. Returns the final state; the
    chunks and the captured headers are gone afterwards."""
    state = ownership.state
    if stopped_for is None and state.status == "in_progress":
        state = await ownership.append([BatchFinalizing(finalizing_at=now)])
    expiry = state.output_expires_after_seconds or default_expiry
    output, errors_file = [
        await write_result_file(log, storage, state, kind, now, expiry)
        for kind in ("output", "errors")
    ]
    counts, usage = state.request_counts, state.usage
    ending: BatchCompleted | BatchCancelled | BatchExpired | BatchFailed
    if stopped_for == "failed":
        ending = BatchFailed(
            failed_at=now, errors=list(errors), request_counts=counts, usage=usage,
            output_file_id=output, error_file_id=errors_file,
        )  # fmt: skip
    elif state.status == "cancelling" or stopped_for == "cancelled":
        ending = BatchCancelled(
            cancelled_at=now, request_counts=counts, usage=usage,
            output_file_id=output, error_file_id=errors_file,
        )  # fmt: skip
    elif stopped_for == "expired":
        ending = BatchExpired(
            expired_at=now, request_counts=counts, usage=usage,
            output_file_id=output, error_file_id=errors_file,
        )  # fmt: skip
    else:
        ending = BatchCompleted(
            completed_at=now, request_counts=counts, usage=usage,
            output_file_id=output, error_file_id=errors_file,
        )  # fmt: skip
    final = await ownership.append([ending])
    await remove_chunks(storage, final)
    await secrets.delete(final.id)
    logger.info("batch %s ended %s: %s", final.id, final.status, final.request_counts)
    return final
