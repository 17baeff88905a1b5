"""The pieces of `batch-gateway tail` that need no server: SSE parsing and the progress view."""

from __future__ import annotations

import json
from typing import Any

from batch_gateway.client.event_stream import SseMessage, parse_sse, sse_lines
from batch_gateway.client.progress_view import ProgressView


def test_sse_lines_split_only_where_sse_does() -> None:
    # JSON strings may hold U+2028 and NEL raw; a CRLF may be split across chunks.
    chunks = ["id: 1-0\r", '\nevent: batch.created\rdata: {"m":"a\u2028b\x85c"}\n', "\r", "\n"]

    assert list(sse_lines(chunks)) == [
        "id: 1-0",
        "event: batch.created",
        'data: {"m":"a\u2028b\x85c"}',
        "",
    ]


def test_parse_sse_skips_comments_and_joins_data_lines() -> None:
    lines = [
        ": keep-alive",
        "",
        "id: 2-0",
        "event: x",
        "data: a",
        "data: b",
        "retry: 5",
        "",
        "data: lost",
    ]

    assert list(parse_sse(lines)) == [SseMessage("2-0", "x", "a\nb")]


def document(kind: str, at: float, **data: Any) -> str:
    return json.dumps({"type": kind, "occurred_at": at, "data": data})


def counts(total: int, completed: int, failed: int = 0) -> dict[str, int]:
    return {"total": total, "completed": completed, "failed": failed}


def test_progress_view_rates_by_event_time_and_ignores_the_unknown() -> None:
    view = ProgressView("batch_1")
    view.apply("batch.created", document("batch.created", 100.0))
    view.apply("batch.validated", document("batch.validated", 100.5, total=100))
    view.apply("batch.in_progress", document("batch.in_progress", 101.0, attempt=1))
    view.apply(
        "batch.progress", document("batch.progress", 103.0, request_counts=counts(100, 18, 2))
    )
    view.apply("batch.something_new", document("batch.something_new", 103.5, extra=1))

    assert view.status == "in_progress"
    assert view.rate() == 10.0  # 20 requests between t=101 and t=103
    assert view.eta_seconds() == 8.0
    assert "20/100  10.0 req/s  ETA 8s  (18 ok, 2 failed)" in view.line()

    view.apply(
        "batch.completed",
        document(
            "batch.completed", 111.0, request_counts=counts(100, 97, 3), output_file_id="file-o"
        ),
    )

    assert view.status == "completed"
    assert view.eta_seconds() is None
    assert view.summary() == "batch_1 completed: 97 completed, 3 failed of 100; output file-o"


def test_progress_view_stays_cancelling_until_the_end_and_names_error_lines() -> None:
    view = ProgressView("batch_1")
    view.apply("batch.validated", document("batch.validated", 100.5, total=1500))
    view.apply("batch.cancel_requested", document("batch.cancel_requested", 102.0))
    # The last slice, claimed after the cancel, only to be stopped.
    view.apply("batch.in_progress", document("batch.in_progress", 102.5, slice=2))
    assert view.status == "cancelling"
    assert view.eta_seconds() is None
    view.apply("batch.cancelled", document("batch.cancelled", 103.0))
    assert view.status == "cancelled"

    failed = ProgressView("batch_2")
    errors = [
        {"code": "invalid_json_line", "message": "Not JSON.", "line": 4},
        {"code": "empty_file", "message": "No requests.", "line": None},
    ]
    failed.apply("batch.failed", document("batch.failed", 100.0, errors=errors))
    assert failed.summary().splitlines()[1:] == [
        "  line 4: invalid_json_line: Not JSON.",
        "  empty_file: No requests.",
    ]
