"""What the simulator has received and answered, for tests and benchmarks (`GET /stats`).

Processors send `X-Batch-Request: <batch_id>/<custom_id>`; counting each value tells a crash test
how often each request of a batch reached the server (at most the in-flight window twice).
Requests are also counted per trace id of their W3C `traceparent` header, which tells a tracing
test that the trace of a batch's create call reached the inference server. The router hints
of llm-d's Gateway API Inference Extension are counted by value (fairness id, objective) or
by presence (the SLO), which tells a test that the processors sent them.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

BATCH_REQUEST_HEADER = "X-Batch-Request"
FAIRNESS_HEADER = "x-gateway-inference-fairness-id"
OBJECTIVE_HEADER = "x-gateway-inference-objective"
SLO_HEADER = "x-slo-ttft-ms"
# What llm-d's router sets on a request it shed.
DROPPED_HEADER = "x-llm-d-request-dropped-reason"


class SimulatorStats(msgspec.Struct, kw_only=True):
    # Requests received, whatever became of them.
    requests: int = 0
    by_path: dict[str, int] = msgspec.field(default_factory=dict)
    # Answers by HTTP status ("200", "429", ...), and "disconnect" for connections dropped on
    # purpose; a request whose client gave up first is counted under "client_gone".
    by_status: dict[str, int] = msgspec.field(default_factory=dict)
    # Requests received per value of the X-Batch-Request header.
    by_batch_request: dict[str, int] = msgspec.field(default_factory=dict)
    # Requests received per trace id of their traceparent header (none without one).
    by_trace_id: dict[str, int] = msgspec.field(default_factory=dict)
    # Router hints: requests per fairness id and per objective, and requests with an SLO.
    by_fairness_id: dict[str, int] = msgspec.field(default_factory=dict)
    by_objective: dict[str, int] = msgspec.field(default_factory=dict)
    with_slo: int = 0
    # The most requests served at once (over the server-wide slots).
    peak_running: int = 0


class RequestCounter:
    def __init__(self) -> None:
        self._stats = SimulatorStats()

    def received(self, path: str, batch_request: str | None, traceparent: str | None = None) -> int:
        """Count an arriving request; returns how many times its X-Batch-Request value has
        arrived, this time included (0 without the header)."""
        stats = self._stats
        stats.requests += 1
        stats.by_path[path] = stats.by_path.get(path, 0) + 1
        if traceparent is not None:
            # version-traceid-parentid-flags; anything malformed is counted as it came.
            parts = traceparent.split("-")
            trace_id = parts[1] if len(parts) >= 4 else traceparent
            stats.by_trace_id[trace_id] = stats.by_trace_id.get(trace_id, 0) + 1
        if batch_request is None:
            return 0
        seen = stats.by_batch_request.get(batch_request, 0) + 1
        stats.by_batch_request[batch_request] = seen
        return seen

    def hints(self, headers: Mapping[str, str]) -> None:
        stats = self._stats
        for header, counts in (
            (FAIRNESS_HEADER, stats.by_fairness_id),
            (OBJECTIVE_HEADER, stats.by_objective),
        ):
            value = headers.get(header)
            if value is not None:
                counts[value] = counts.get(value, 0) + 1
        if SLO_HEADER in headers:
            stats.with_slo += 1

    def answered(self, status: str) -> None:
        by_status = self._stats.by_status
        by_status[status] = by_status.get(status, 0) + 1

    def snapshot(self) -> SimulatorStats:
        stats = self._stats
        return SimulatorStats(
            requests=stats.requests,
            by_path=dict(stats.by_path),
            by_status=dict(stats.by_status),
            by_batch_request=dict(stats.by_batch_request),
            by_trace_id=dict(stats.by_trace_id),
            by_fairness_id=dict(stats.by_fairness_id),
            by_objective=dict(stats.by_objective),
            with_slo=stats.with_slo,
        )

    def reset(self) -> None:
        self._stats = SimulatorStats()
