"""What the console shows of one batch: its progress, pace, time left and timeline, computed
from the projection's record on the server, so that the first paint needs no script.

The batch page's script then folds the live events into the same figures (console/static/
batch.js); the list's rows are re-rendered from here while any of them is still running.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from batch_gateway.events.batch_aggregate import TERMINAL, BatchStatus
from batch_gateway.gateway.batch_commands import CANCELLABLE
from batch_gateway.processors.execution.priority import priority_of
from batch_gateway.projections.batch_queries import BatchRecord

# What a cell shows for a figure not known (yet): an en dash, as tables print it.
NOTHING = "\N{EN DASH}"
# The statuses in the order a batch goes through them, as the filters are shown.
_LIFECYCLE: tuple[BatchStatus, ...] = (
    "validating",
    "in_progress",
    "finalizing",
    "cancelling",
    "completed",
    "failed",
    "cancelled",
    "expired",
)
# What the console filters by; "active" stands for every status a batch can still leave.
STATUS_FILTERS: Mapping[str, tuple[str, ...]] = {
    "active": tuple(status for status in _LIFECYCLE if status not in TERMINAL)
} | {status: (status,) for status in _LIFECYCLE}


class TimelineStep(msgspec.Struct, frozen=True):
    label: str
    at: int | None


class BatchView(msgspec.Struct, frozen=True, kw_only=True):
    record: BatchRecord
    priority: str
    done: int
    percent_completed: float
    percent_failed: float
    requests_per_second: float | None
    seconds_left: float | None
    timeline: list[TimelineStep]
    errors: list[dict[str, Any]]

    @property
    def ended(self) -> bool:
        return self.record.status in TERMINAL

    @property
    def cancellable(self) -> bool:
        # The API's own rule; the button is only a shortcut, and the API still decides.
        return self.record.status in CANCELLABLE


def batch_view(record: BatchRecord, now: float) -> BatchView:
    done = record.completed + record.failed
    total = record.total
    rate = _pace(record, done, now)
    running = record.status == "in_progress"
    left = (total - done) / rate if rate and total > done and running else None
    return BatchView(
        record=record,
        priority=priority_of(record.metadata),
        done=done,
        percent_completed=100.0 * record.completed / total if total else 0.0,
        percent_failed=100.0 * record.failed / total if total else 0.0,
        requests_per_second=rate,
        seconds_left=left,
        timeline=_timeline(record),
        errors=list((record.errors or {}).get("data") or []),
    )


def _pace(record: BatchRecord, done: int, now: float) -> float | None:
    """Requests a second over the batch's run so far: from when it went in progress until it
    started finalizing (or now, while it runs). None for a cancelled or expired batch: its
    counts end with every request that never ran (console/static/batch.js agrees)."""
    if record.in_progress_at is None or done == 0 or record.status in ("cancelled", "expired"):
        return None
    until = record.finalizing_at or _ended_at(record) or now
    elapsed = max(until - record.in_progress_at, 1.0)
    return done / elapsed


def _ended_at(record: BatchRecord) -> int | None:
    return (
        record.completed_at or record.failed_at or record.cancelled_at or record.expired_at or None
    )


def _timeline(record: BatchRecord) -> list[TimelineStep]:
    steps = [
        TimelineStep("validating", record.created_at),
        TimelineStep("in progress", record.in_progress_at),
        TimelineStep("finalizing", record.finalizing_at),
    ]
    if record.cancelling_at is not None:
        steps.append(TimelineStep("cancelling", record.cancelling_at))
    ended = record.status if record.status in TERMINAL else "ended"
    steps.append(TimelineStep(ended, _ended_at(record)))
    return steps


def duration(seconds: float | None) -> str:
    """`1h 02m`, `3m 05s`, `42s`: short enough for a table cell."""
    if seconds is None:
        return NOTHING
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"
