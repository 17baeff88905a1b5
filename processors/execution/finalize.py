"""Ending a batch: its committed chunks turned into OpenAI's output and error files,
idempotently, then its terminal event.

The files get ids derived from the batch id, so a processor that re-finalizes after a crash
(or after losing the job mid-way) writes the same bytes under the same key and finds the
file event already appended: no duplicate files, nothing half-made visible. A kind with no
lines gets no file (its id stays null), as at OpenAI.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from batch_gateway.events import EventLog, VersionConflict
from batch_gateway.events.batch_aggregate import BatchState
from batch_gateway.events.batch_events import (
    BatchCancelled,
    BatchCompleted,
    BatchError,
    BatchExpired,
    BatchFailed,
    BatchFinalizing,
)
from batch_gateway.processors.execution.ownership import Ownership
from batch_gateway.results.result_files import (
    committed_lines,
    publish_result_file,
    remove_chunks,
    result_file_id,
)
from batch_gateway.secret_store import SecretStore
from batch_gateway.storage import ObjectStorage

logger = logging.getLogger(__name__)


async def write_result_file(
    log: EventLog,
    storage: ObjectStorage,
    state: BatchState,
    kind: str,
    created_at: int,
    default_expiry: int,
) -> str | None:
    """Write the batch's `kind` file from its committed chunks; its id, or None if empty."""
    file_id = result_file_id(state.id, kind)
    lines = committed_lines(storage, state.tenant, state.id, state.chunks, kind)
    try:
        published = await publish_result_file(
            log, storage, state, file_id=file_id, kind=kind, lines=lines,
            created_at=created_at, default_expiry=default_expiry,
        )  # fmt: skip
    except VersionConflict:
        return file_id  # an earlier finalize of this batch made it, from the same chunks
    return None if published is None else file_id


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
    output, errors_file = [
        await write_result_file(log, storage, state, kind, now, default_expiry)
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
