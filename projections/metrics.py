"""Prometheus metrics of the projector."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

PROJECTED_EVENTS = Counter(
    "batch_gateway_projector_events_total", "Events applied to the PostgreSQL projections."
)
PROJECTION_LAG_SECONDS = Gauge(
    "batch_gateway_projector_lag_seconds",
    "Age of the newest event applied, measured when it was applied (0 when caught up).",
)
