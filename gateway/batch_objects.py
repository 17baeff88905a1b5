"""The Batch object and its list, shaped exactly like OpenAI's."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from batch_gateway.events.batch_aggregate import BatchState
from batch_gateway.gateway.objects import ListPage
from batch_gateway.projections.batch_queries import BatchRecord


class BatchRequestCounts(msgspec.Struct, frozen=True, kw_only=True):
    completed: int
    failed: int
    total: int


class InputTokensDetails(msgspec.Struct, frozen=True):
    cached_tokens: int


class OutputTokensDetails(msgspec.Struct, frozen=True):
    reasoning_tokens: int


class BatchUsage(msgspec.Struct, frozen=True, kw_only=True):
    input_tokens: int
    input_tokens_details: InputTokensDetails
    output_tokens: int
    output_tokens_details: OutputTokensDetails
    total_tokens: int


class BatchObject(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    object: Literal["batch"] = "batch"
    endpoint: str
    errors: dict[str, Any] | None
    input_file_id: str
    completion_window: str
    status: str
    output_file_id: str | None
    error_file_id: str | None
    created_at: int
    in_progress_at: int | None
    expires_at: int | None
    finalizing_at: int | None
    completed_at: int | None
    failed_at: int | None
    expired_at: int | None
    cancelling_at: int | None
    cancelled_at: int | None
    request_counts: BatchRequestCounts
    usage: BatchUsage
    model: str | None
    metadata: dict[str, str] | None

    @classmethod
    def from_record(cls, record: BatchRecord) -> BatchObject:
        return cls(
            id=record.id,
            endpoint=record.endpoint,
            errors=record.errors,
            input_file_id=record.input_file_id,
            completion_window=record.completion_window,
            status=record.status,
            output_file_id=record.output_file_id,
            error_file_id=record.error_file_id,
            created_at=record.created_at,
            in_progress_at=record.in_progress_at,
            expires_at=record.expires_at,
            finalizing_at=record.finalizing_at,
            completed_at=record.completed_at,
            failed_at=record.failed_at,
            expired_at=record.expired_at,
            cancelling_at=record.cancelling_at,
            cancelled_at=record.cancelled_at,
            request_counts=BatchRequestCounts(
                completed=record.completed, failed=record.failed, total=record.total
            ),
            usage=BatchUsage(
                input_tokens=record.input_tokens,
                input_tokens_details=InputTokensDetails(record.cached_tokens),
                output_tokens=record.output_tokens,
                output_tokens_details=OutputTokensDetails(record.reasoning_tokens),
                total_tokens=record.total_tokens,
            ),
            model=record.model,
            metadata=record.metadata,
        )

    @classmethod
    def just_created(cls, state: BatchState) -> BatchObject:
        """The batch as its `batch.created` made it: validating, nothing counted yet."""
        assert state.status == "validating", state.status
        return cls(
            id=state.id,
            endpoint=state.endpoint,
            errors=None,
            input_file_id=state.input_file_id,
            completion_window=state.completion_window,
            status=state.status,
            output_file_id=None,
            error_file_id=None,
            created_at=state.created_at,
            in_progress_at=None,
            expires_at=state.expires_at,
            finalizing_at=None,
            completed_at=None,
            failed_at=None,
            expired_at=None,
            cancelling_at=None,
            cancelled_at=None,
            request_counts=BatchRequestCounts(completed=0, failed=0, total=0),
            usage=BatchUsage(
                input_tokens=0,
                input_tokens_details=InputTokensDetails(0),
                output_tokens=0,
                output_tokens_details=OutputTokensDetails(0),
                total_tokens=0,
            ),
            model=None,
            metadata=state.metadata,
        )


BatchList = ListPage[BatchObject]
