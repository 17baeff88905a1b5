"""Telling a job at work from a job stuck with nothing left to do.

A running job always has a reason to exist: a request in flight (however slow the server), or
something it did a moment ago (a request dispatched, a result buffered, a chunk committed, a
phase begun). A job with neither for `STALL_SECONDS` is stuck: no timer, no answer and no
commit will move it, and since its processor keeps heartbeating, no other processor takes it
over either. Issue 10 found one such job behind an absorbed cancellation; whatever the next
cause is, `batch_gateway_jobs_stalled` counts it and an alert asks an operator to look.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from prometheus_client import Gauge

# Far above any pause of a healthy job between two steps (a commit interval is a second, a
# retry waits at most `backoff_max_seconds` with its request counted in flight).
STALL_SECONDS = 120.0

JOBS_STALLED = Gauge(
    "batch_gateway_jobs_stalled",
    f"Running jobs of this processor with no request in flight and no step for "
    f"{STALL_SECONDS:.0f}s: stuck, since nothing will move them.",
)


class JobActivity:
    """What one running job is doing, as the executor sees it."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last_step = clock()
        self.in_flight = 0

    def step(self) -> None:
        """The job did something: it is not stuck, for `STALL_SECONDS` at least."""
        self._last_step = self._clock()

    def idle_seconds(self) -> float:
        return 0.0 if self.in_flight else self._clock() - self._last_step

    @property
    def stalled(self) -> bool:
        return self.idle_seconds() >= STALL_SECONDS


def watch_stalled(activities: Callable[[], Iterable[JobActivity]]) -> None:
    """Report how many of the running jobs are stalled, computed at each scrape."""
    JOBS_STALLED.set_function(lambda: sum(1 for job in activities() if job.stalled))
