"""The `batches` projection: folds batch events into the `batches` table.

Every statement sets values (never increments), so re-applying one is harmless even
without the checkpoint that already makes redelivery a no-op.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncCursor
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb

from batch_gateway.events import Recorded
from batch_gateway.events.batch_events import (
    BatchCancelled,
    BatchCancelRequested,
    BatchCompleted,
    BatchCreated,
    BatchExpired,
    BatchFailed,
    BatchFinalizing,
    BatchProgress,
    BatchValidated,
    RequestCounts,
    Usage,
)

_INSERT = """
INSERT INTO batches (id, tenant, status, endpoint, input_file_id, completion_window,
                     created_at, expires_at, metadata, log_ms, log_seq)
VALUES (%(id)s, %(tenant)s, 'validating', %(endpoint)s, %(input_file_id)s,
        %(completion_window)s, %(created_at)s, %(expires_at)s, %(metadata)s,
        %(log_ms)s, %(log_seq)s)
ON CONFLICT (id) DO NOTHING
"""

_COUNTS = "total = %(total)s, completed = %(completed)s, failed = %(failed)s"
_USAGE = (
    "input_tokens = %(input_tokens)s, cached_tokens = %(cached_tokens)s,"
    " output_tokens = %(output_tokens)s, reasoning_tokens = %(reasoning_tokens)s,"
    " total_tokens = %(total_tokens)s"
)
_FILES = "output_file_id = %(output_file_id)s, error_file_id = %(error_file_id)s"
# Cancelled and expired events may carry no final counts: the row then keeps its last ones.
_KEPT = ", ".join(
    f"{column} = COALESCE(%({column})s, {column})"
    for column in ("total", "completed", "failed", "input_tokens", "cached_tokens",
                   "output_tokens", "reasoning_tokens", "total_tokens")
)  # fmt: skip

_UPDATES = {
    BatchValidated: "status = 'in_progress', in_progress_at = %(at)s, total = %(total)s,"
    " model = %(model)s, priority = %(priority)s",
    BatchProgress: f"{_COUNTS}, {_USAGE}",
    BatchFinalizing: "status = 'finalizing', finalizing_at = %(at)s",
    BatchCompleted: f"status = 'completed', completed_at = %(at)s, {_COUNTS}, {_USAGE}, {_FILES}",
    BatchFailed: f"status = 'failed', failed_at = %(at)s, errors = %(errors)s, {_KEPT}, {_FILES}",
    BatchCancelRequested: "status = 'cancelling', cancelling_at = %(at)s",
    BatchCancelled: f"status = 'cancelled', cancelled_at = %(at)s, {_KEPT}, {_FILES}",
    BatchExpired: f"status = 'expired', expired_at = %(at)s, {_KEPT}, {_FILES}",
}
_STATEMENTS = {
    cls: f"UPDATE batches SET {sets} WHERE id = %(id)s" for cls, sets in _UPDATES.items()
}


class BatchesProjection:
    async def apply(self, cursor: AsyncCursor[TupleRow], recorded: Recorded) -> None:
        envelope = recorded.envelope
        event = envelope.event
        if isinstance(event, BatchCreated):
            await cursor.execute(
                _INSERT,
                {
                    "id": envelope.aggregate_id,
                    "tenant": envelope.tenant,
                    "endpoint": event.endpoint,
                    "input_file_id": event.input_file_id,
                    "completion_window": event.completion_window,
                    "created_at": event.created_at,
                    "expires_at": event.expires_at,
                    "metadata": Jsonb(event.metadata) if event.metadata is not None else None,
                    "log_ms": recorded.stream_id.ms,
                    "log_seq": recorded.stream_id.seq,
                },
            )
            return
        statement = _STATEMENTS.get(type(event))
        if statement is None:
            return  # batch.in_progress (a claim) changes nothing a client sees
        await cursor.execute(statement, _parameters(envelope.aggregate_id, event))


def _parameters(batch_id: str, event: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"id": batch_id}
    match event:
        case BatchValidated():
            params.update(
                at=event.validated_at,
                total=event.total,
                model=event.models[0] if len(event.models) == 1 else None,
                priority=event.priority,
            )
        case BatchProgress():
            params.update(_counts(event.request_counts) | _usage(event.usage))
        case BatchFinalizing():
            params["at"] = event.finalizing_at
        case BatchCompleted():
            params.update(at=event.completed_at, **_counts(event.request_counts))
            params.update(_usage(event.usage) | _files(event.output_file_id, event.error_file_id))
        case BatchFailed():
            errors = [
                {"code": e.code, "message": e.message, "param": e.param, "line": e.line}
                for e in event.errors
            ]
            params.update(at=event.failed_at, errors=Jsonb({"object": "list", "data": errors}))
            params.update(_kept(event.request_counts, event.usage))
            params.update(_files(event.output_file_id, event.error_file_id))
        case BatchCancelRequested():
            params["at"] = event.cancelling_at
        case BatchCancelled() | BatchExpired():
            at = event.cancelled_at if isinstance(event, BatchCancelled) else event.expired_at
            params.update(at=at, **_files(event.output_file_id, event.error_file_id))
            params.update(_kept(event.request_counts, event.usage))
    return params


def _kept(counts: RequestCounts | None, usage: Usage | None) -> dict[str, int | None]:
    """An ending's final counts and usage, or NULLs that keep the row's last ones."""
    kept: dict[str, int | None] = dict.fromkeys(_counts(RequestCounts()) | _usage(Usage()))
    if counts is not None:
        kept.update(_counts(counts))
    if usage is not None:
        kept.update(_usage(usage))
    return kept


def _counts(counts: RequestCounts) -> dict[str, int]:
    return {"total": counts.total, "completed": counts.completed, "failed": counts.failed}


def _usage(usage: Usage) -> dict[str, int]:
    return {
        "input_tokens": usage.input_tokens,
        "cached_tokens": usage.cached_tokens,
        "output_tokens": usage.output_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
        "total_tokens": usage.total_tokens,
    }


def _files(output_file_id: str | None, error_file_id: str | None) -> dict[str, str | None]:
    return {"output_file_id": output_file_id, "error_file_id": error_file_id}
