"""Prometheus metrics of the processor (docs/metrics.md lists them all).

Model names come from users' input files, so they are admitted as label values only up to
`MODEL_LABEL_LIMIT` distinct names per process; later ones are counted as "other". The bound
guards the process-wide registry, so it is process-wide too, like the metrics themselves.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator

import aiohttp
from prometheus_client import Counter, Gauge, Histogram
from tenacity import RetryCallState

from batch_gateway.results.result_lines import ResultLine

MODEL_LABEL_LIMIT = 100
OTHER_MODEL = "other"

QUEUE_DEPTH = Gauge(
    "batch_gateway_queue_depth",
    "Jobs waiting to be claimed, per priority class (entries no executor has read yet).",
    ["priority"],
)
QUEUE_WAIT = Histogram(
    "batch_gateway_queue_wait_seconds",
    "Time from a job's queueing (batch.validated) to its first claim, per priority class.",
    ["priority"],
    buckets=(0.1, 1, 5, 15, 30, 60, 300, 900, 1800, 3600, 7200, 21600, 86400),
)
JOBS_RUNNING = Gauge("batch_gateway_jobs_running", "Jobs this processor is running.")
JOB_SLOTS = Gauge(
    "batch_gateway_job_slots", "Jobs this processor may run at once (max_concurrent_jobs)."
)
JOB_PHASE = Histogram(
    "batch_gateway_job_phase_seconds",
    "Duration of a phase of a job: validate, plan, dispatch, finalize.",
    ["phase"],
    buckets=(0.01, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 14400, 86400),
)
VALIDATIONS = Counter(
    "batch_gateway_validations_total", "Input files judged by the validator.", ["outcome"]
)
DISPATCHED = Counter(
    "batch_gateway_requests_dispatched_total",
    "Requests sent downstream (counted once, however many attempts they took).",
    ["model"],
)
RETRIED = Counter(
    "batch_gateway_requests_retried_total",
    "Attempts that failed and were retried.",
    ["model", "reason"],
)
FAILED = Counter(
    "batch_gateway_requests_failed_total",
    "Requests whose final outcome was an error line.",
    ["model", "reason"],
)
DISPATCH_DURATION = Histogram(
    "batch_gateway_dispatch_duration_seconds",
    "Duration of one downstream attempt, from sending to the whole response read.",
    ["model"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
GATEWAY_IN_FLIGHT = Gauge(
    "batch_gateway_gateway_in_flight", "Attempts in flight to a gateway.", ["gateway"]
)
GATEWAY_LIMIT = Gauge(
    "batch_gateway_gateway_concurrency_limit",
    "The adaptive (AIMD) concurrency limit of a gateway.",
    ["gateway"],
)
GATEWAY_SATURATED = Gauge(
    "batch_gateway_gateway_saturated",
    "1 while a gateway's admission is closed: its server's metrics over a threshold, or "
    "unreadable past their grace.",
    ["gateway"],
)
GATEWAY_WAITING = Gauge(
    "batch_gateway_gateway_waiting",
    "Requests waiting for one of a gateway's slots (shared by weighted fair queueing).",
    ["gateway"],
)
ADMISSION_METRICS_FAILURES = Counter(
    "batch_gateway_gateway_metrics_failures_total",
    "Reads of a gateway's load metrics that failed (the admission gate fails closed).",
    ["gateway"],
)
WEBHOOK_DELIVERIES = Counter(
    "batch_gateway_webhook_deliveries_total",
    "Webhook deliveries per URL: delivered, retried (an attempt failed), dead_lettered.",
    ["outcome"],
)
# Series of known outcomes exist from the start, so that `increase()` sees their first event.
for _outcome in ("valid", "invalid"):
    VALIDATIONS.labels(_outcome)
for _outcome in ("delivered", "retried", "dead_lettered"):
    WEBHOOK_DELIVERIES.labels(_outcome)


class BoundedLabels:
    """Admits the first `limit` distinct values; every later one is `OTHER_MODEL`."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._admitted: set[str] = set()
        self._lock = threading.Lock()

    def label(self, value: str | None) -> str:
        if value is None:
            return OTHER_MODEL
        with self._lock:
            if value in self._admitted:
                return value
            if len(self._admitted) < self._limit:
                self._admitted.add(value)
                return value
        return OTHER_MODEL


MODEL_LABELS = BoundedLabels(MODEL_LABEL_LIMIT)


def admit_models(models: Iterable[str]) -> None:
    """The configured models take their label slots first, so they are never `other`."""
    for model in models:
        MODEL_LABELS.label(model)


@contextlib.contextmanager
def job_phase(phase: str) -> Iterator[None]:
    """Observe how long the block takes as `phase` (also when it raises)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        JOB_PHASE.labels(phase).observe(time.perf_counter() - started)


def observe_queue_wait(priority: str, entry_id: bytes) -> None:
    """A job stream entry's id is the Redis time it was queued at (XADD "*"), so the wait is
    measured without a field of its own; clock skew to Redis is clamped at zero."""
    queued_ms = int(entry_id.split(b"-", 1)[0])
    QUEUE_WAIT.labels(priority).observe(max(0.0, time.time() - queued_ms / 1000))


def status_reason(status: int) -> str:
    if status == 429:
        return "http_429"
    return "http_5xx" if status >= 500 else "http_4xx"


def error_reason(error: BaseException | None) -> str:
    if isinstance(error, TimeoutError):  # aiohttp's timeouts are TimeoutErrors too
        return "timeout"
    if isinstance(error, aiohttp.ClientConnectionError):
        return "connection"
    status = getattr(error, "status", None)
    return status_reason(status) if isinstance(status, int) else "error"


def watch_gateway(
    name: str,
    in_flight: Callable[[], float],
    limit: Callable[[], float],
    saturated: Callable[[], float],
    waiting: Callable[[], float],
) -> None:
    """Report a gateway's live values, read at each scrape (nothing to keep in step)."""
    GATEWAY_IN_FLIGHT.labels(name).set_function(in_flight)
    GATEWAY_LIMIT.labels(name).set_function(limit)
    GATEWAY_SATURATED.labels(name).set_function(saturated)
    GATEWAY_WAITING.labels(name).set_function(waiting)


def forget_gateway(name: str) -> None:
    for gauge in (GATEWAY_IN_FLIGHT, GATEWAY_LIMIT, GATEWAY_SATURATED, GATEWAY_WAITING):
        gauge.remove(name)


class _ModelSeries:
    """The series of one model label, resolved once: `labels()` takes a lock and a lookup,
    which per request would be a good share of what the metrics cost."""

    def __init__(self, model: str) -> None:
        self.dispatched = DISPATCHED.labels(model)
        self.duration = DISPATCH_DURATION.labels(model)


_series: dict[str, _ModelSeries] = {}


class RequestMetrics:
    """The metrics of one request on its way downstream, under its bounded model label."""

    def __init__(self, model: str | None) -> None:
        self.model = MODEL_LABELS.label(model)
        series = _series.get(self.model)
        if series is None:
            series = _series[self.model] = _ModelSeries(self.model)
        self._series = series
        self._sent = False
        self._started = 0.0

    def attempt(self) -> RequestMetrics:
        """Around one downstream attempt (`with`): counts the request once, times every attempt."""
        return self

    def __enter__(self) -> None:
        if not self._sent:
            self._sent = True
            self._series.dispatched.inc()
        self._started = time.perf_counter()

    def __exit__(self, *exc_info: object) -> None:
        self._series.duration.observe(time.perf_counter() - self._started)

    def retried(self, state: RetryCallState) -> None:
        """tenacity's `before_sleep`: an attempt failed and another one follows."""
        error = state.outcome.exception() if state.outcome is not None else None
        RETRIED.labels(self.model, error_reason(error)).inc()

    def finished(self, line: ResultLine) -> None:
        if line.response is not None:
            if line.response.status_code >= 400:
                FAILED.labels(self.model, status_reason(line.response.status_code)).inc()
        elif line.error is not None:
            reason = {"request_timeout": "timeout", "server_error": "connection"}
            FAILED.labels(self.model, reason.get(line.error.code, line.error.code)).inc()
