"""What `batch-gateway tail` shows: a batch's status, counts, rate and ETA, folded from the
public event documents (docs/events.md) as they arrive.

Rates are computed from the events' own `occurred_at`, not from when they reach us, so a
replay after a reconnection shows the rate the batch ran at, not the speed of the replay.
Unknown event types and fields are ignored, as the compatibility promise asks of consumers.
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any

from batch_gateway.events.batch_aggregate import TERMINAL

# Progress samples older than this (in event time) no longer count towards the rate.
RATE_WINDOW_SECONDS = 30.0
BAR_WIDTH = 24

_STATUS_OF = {
    "batch.created": "validating",
    "batch.validated": "in_progress",
    "batch.in_progress": "in_progress",
    "batch.finalizing": "finalizing",
    "batch.cancel_requested": "cancelling",
    "batch.completed": "completed",
    "batch.failed": "failed",
    "batch.cancelled": "cancelled",
    "batch.expired": "expired",
}


class ProgressView:
    def __init__(self, batch_id: str) -> None:
        self.batch_id = batch_id
        self.status = "validating"
        self.total = 0
        self.completed = 0
        self.failed = 0
        self.output_file_id: str | None = None
        self.error_file_id: str | None = None
        self.errors: list[str] = []
        self._samples: deque[tuple[float, int]] = deque()

    @property
    def done(self) -> int:
        return self.completed + self.failed

    def apply(self, event_type: str, document: str) -> None:
        """Fold one event (its SSE `event` and `data`) into the view."""
        envelope: dict[str, Any] = json.loads(document)
        data: dict[str, Any] = envelope.get("data") or {}
        status = _STATUS_OF.get(event_type, self.status)
        # A slice claimed after a cancel was asked for announces itself with batch.in_progress:
        # only the terminal event moves a cancelling batch on.
        if not (self.status == "cancelling" and status not in TERMINAL):
            self.status = status
        if event_type == "batch.validated":
            self.total = int(data.get("total", self.total))
        counts = data.get("request_counts")
        if isinstance(counts, dict):
            self.total = int(counts.get("total", self.total))
            self.completed = int(counts.get("completed", self.completed))
            self.failed = int(counts.get("failed", self.failed))
        if event_type in ("batch.in_progress", "batch.progress"):
            self._sample(float(envelope.get("occurred_at", 0.0)))
        self.output_file_id = data.get("output_file_id") or self.output_file_id
        self.error_file_id = data.get("error_file_id") or self.error_file_id
        for error in data.get("errors") or ():
            if isinstance(error, dict):
                line = f"line {error['line']}: " if error.get("line") else ""
                self.errors.append(f"{line}{error.get('code')}: {error.get('message')}")

    def rate(self) -> float | None:
        """Requests finished per second over the recent samples, when there are two."""
        if len(self._samples) < 2:
            return None
        (t0, done0), (t1, done1) = self._samples[0], self._samples[-1]
        if t1 <= t0:
            return None
        return max(0.0, (done1 - done0) / (t1 - t0))

    def eta_seconds(self) -> float | None:
        rate = self.rate()
        if not rate or self.status != "in_progress" or self.total <= 0:
            return None
        return max(0.0, self.total - self.done) / rate

    def line(self) -> str:
        rate = self.rate()
        eta = self.eta_seconds()
        # What matters most first: a terminal narrower than the line cuts it at the end.
        parts = [
            f"{self.status:<11}",
            _bar(self.done, self.total),
            f"{self.done}/{self.total}",
            f"{rate:.1f} req/s" if rate is not None else "- req/s",
            f"ETA {_duration(eta)}" if eta is not None else "ETA -",
            f"({self.completed} ok, {self.failed} failed)",
        ]
        return "  ".join(parts)

    def summary(self) -> str:
        text = (
            f"{self.batch_id} {self.status}: {self.completed} completed, {self.failed} failed"
            f" of {self.total}"
        )
        files = [
            f"{name} {file_id}"
            for name, file_id in (("output", self.output_file_id), ("errors", self.error_file_id))
            if file_id
        ]
        if files:
            text += "; " + ", ".join(files)
        return "\n".join([text, *(f"  {error}" for error in self.errors)])

    def _sample(self, occurred_at: float) -> None:
        self._samples.append((occurred_at, self.done))
        while len(self._samples) > 2 and occurred_at - self._samples[0][0] > RATE_WINDOW_SECONDS:
            self._samples.popleft()


def _bar(done: int, total: int) -> str:
    filled = BAR_WIDTH * done // total if total > 0 else 0
    return "[" + "#" * filled + "." * (BAR_WIDTH - filled) + "]"


def _duration(seconds: float) -> str:
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
