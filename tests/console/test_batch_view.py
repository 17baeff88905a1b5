"""What the console computes of a batch from its projected record: pace, time left, timeline."""

from __future__ import annotations

from typing import Any

import pytest

from batch_gateway.gateway.console.batch_view import batch_view, duration
from batch_gateway.projections.batch_queries import BatchRecord


def record(**changes: Any) -> BatchRecord:
    fields: dict[str, Any] = {
        "id": "batch_" + "0" * 32,
        "tenant": "t",
        "status": "in_progress",
        "endpoint": "/v1/chat/completions",
        "input_file_id": "file-1",
        "completion_window": "24h",
        "created_at": 1_000,
        "expires_at": 87_400,
        "in_progress_at": 1_010,
        "finalizing_at": None,
        "completed_at": None,
        "failed_at": None,
        "expired_at": None,
        "cancelling_at": None,
        "cancelled_at": None,
        "errors": None,
        "metadata": {"priority": "HIGH"},
        "model": "m1",
        "output_file_id": None,
        "error_file_id": None,
        "total": 1_000,
        "completed": 180,
        "failed": 20,
        "input_tokens": 0,
        "cached_tokens": 0,
        "output_tokens": 0,
        "reasoning_tokens": 0,
        "total_tokens": 0,
    }
    return BatchRecord(**(fields | changes))


def test_a_running_batch_has_a_pace_and_a_time_left() -> None:
    view = batch_view(record(), now=1_110)
    assert view.done == 200
    assert view.requests_per_second == pytest.approx(2.0)
    assert view.seconds_left == pytest.approx(400.0)
    assert view.percent_completed == pytest.approx(18.0)
    assert view.percent_failed == pytest.approx(2.0)
    assert view.priority == "high"
    assert view.cancellable
    assert [step.at for step in view.timeline] == [1_000, 1_010, None, None]


def test_an_ended_batch_is_paced_over_its_run_and_has_no_time_left() -> None:
    ended = record(
        status="completed", completed=990, failed=10, finalizing_at=1_510, completed_at=1_512
    )
    view = batch_view(ended, now=99_999)
    assert view.requests_per_second == pytest.approx(2.0)
    assert view.seconds_left is None
    assert not view.cancellable
    assert [(step.label, step.at) for step in view.timeline][-1] == ("completed", 1_512)


def test_a_batch_not_started_has_no_pace_and_its_errors_are_listed() -> None:
    errors = {"object": "list", "data": [{"code": "invalid_json_line", "line": 3}]}
    view = batch_view(
        record(
            status="failed",
            in_progress_at=None,
            completed=0,
            failed=0,
            total=0,
            failed_at=1_001,
            errors=errors,
        ),
        now=2_000,
    )
    assert view.requests_per_second is None
    assert view.seconds_left is None
    assert view.percent_completed == 0.0
    assert view.errors == [{"code": "invalid_json_line", "line": 3}]
    assert [step.label for step in view.timeline] == [
        "validating",
        "in progress",
        "finalizing",
        "failed",
    ]


def test_a_cancelling_batch_shows_the_step_and_cannot_be_cancelled_again() -> None:
    view = batch_view(record(status="cancelling", cancelling_at=1_050), now=1_060)
    assert ("cancelling", 1_050) in [(step.label, step.at) for step in view.timeline]
    assert not view.cancellable


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(None, "\N{EN DASH}"), (0.4, "0s"), (42, "42s"), (185, "3m 05s"), (3_720, "1h 02m")],
)
def test_durations_are_short(seconds: float | None, shown: str) -> None:
    assert duration(seconds) == shown
