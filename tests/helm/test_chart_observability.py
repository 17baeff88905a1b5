"""Alerts and the dashboard query only metrics of the catalogue (the contract between the
components' /metrics and the chart), with the labels the catalogue gives them."""

from __future__ import annotations

import json
import re
from typing import Any

import helm_python
import pytest

from batch_gateway.projections.metrics import LAG_COUNT_CAP
from tests.helm.chart import (
    CHART_DIR,
    EVERYTHING_ON,
    NAMESPACE,
    POD_MONITOR_INSTALL,
    THREE_FLAG_INSTALL,
    render_chart,
)
from tests.helm.manifests import COMPONENTS, of_kind, one
from tests.helm.schema_walk import chart_schema

# The metric catalogue: family -> its labels. Counters are queried with `_total`, histograms
# with `_bucket` / `_sum` / `_count`.
COUNTERS = {
    "batch_gateway_api_requests_total": {"method", "path", "status_code", "app_name"},
    "batch_gateway_projector_events_total": set(),
    "batch_gateway_projector_dead_letters_total": set(),
    "batch_gateway_job_tasks_unended_total": {"task"},
    "batch_gateway_batches_finished_total": {"status"},
    "batch_gateway_validations_total": {"outcome"},
    "batch_gateway_requests_dispatched_total": {"model"},
    "batch_gateway_requests_retried_total": {"model", "reason"},
    "batch_gateway_requests_failed_total": {"model", "reason"},
    "batch_gateway_webhook_deliveries_total": {"outcome"},
    "batch_gateway_gateway_metrics_failures_total": {"gateway"},
    "batch_gateway_gc_deletions_total": {"kind"},
    "batch_gateway_gc_bytes_freed_total": {"kind"},
    "batch_gateway_gc_expiries_total": {"kind"},
    "batch_gateway_storage_operations_total": {"operation", "backend", "outcome"},
    "batch_gateway_storage_bytes_total": {"operation"},
}
HISTOGRAMS = {
    "batch_gateway_api_request_duration_seconds": {"method", "path", "status_code", "app_name"},
    "batch_gateway_queue_wait_seconds": {"priority"},
    "batch_gateway_job_phase_seconds": {"phase"},
    "batch_gateway_dispatch_duration_seconds": {"model"},
    "batch_gateway_storage_operation_duration_seconds": {"operation", "backend"},
}
GAUGES = {
    "batch_gateway_api_requests_in_progress": {"method", "path", "status_code", "app_name"},
    "batch_gateway_api_event_subscribers": set(),
    "batch_gateway_projector_lag_seconds": set(),
    "batch_gateway_projector_lag_events": set(),
    "batch_gateway_batches": {"status"},
    "batch_gateway_queue_depth": {"priority"},
    "batch_gateway_jobs_running": set(),
    "batch_gateway_job_slots": set(),
    "batch_gateway_jobs_stalled": set(),
    "batch_gateway_gateway_in_flight": {"gateway"},
    "batch_gateway_gateway_concurrency_limit": {"gateway"},
    "batch_gateway_gateway_saturated": {"gateway"},
    "batch_gateway_gateway_waiting": {"gateway"},
    "batch_gateway_gc_lag_events": set(),
    "batch_gateway_gc_lag_seconds": set(),
    "batch_gateway_gc_log_entries": set(),
    "batch_gateway_gc_scheduled": set(),
    "batch_gateway_gc_leader": set(),
}
# Labels Prometheus adds when it scrapes, with `component`, which the chart's ServiceMonitor
# and PodMonitor attach, and histogram buckets' own.
SCRAPE_LABELS = {"namespace", "pod", "instance", "job", "service", "container", "component"}
SERIES: dict[str, set[str]] = {
    **COUNTERS,
    **GAUGES,
    **{f"{h}{s}": labels for h, labels in HISTOGRAMS.items() for s in ("_sum", "_count")},
    **{f"{h}_bucket": labels | {"le"} for h, labels in HISTOGRAMS.items()},
    # Prometheus' own per target: 1 if the last scrape succeeded.
    "up": set(),
}
METRIC = re.compile(r"\bbatch_gateway_[a-z0-9_]+|\bup(?=\{)")
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
MATCHER = re.compile(r"\b(batch_gateway_[a-z0-9_]+|up)\{([^}]*)\}")
ALERTS = {
    "BatchGatewayQueueWaitHigh",
    "BatchGatewayJobFailureRateHigh",
    "BatchGatewayRequestFailureRateHigh",
    "BatchGatewayJobsExpired",
    "BatchGatewayProcessorsSaturated",
    "BatchGatewayNoExecutingProcessor",
    "BatchGatewayJobStalled",
    "BatchGatewayInferenceMetricsUnreadable",
    "BatchGatewayComponentDown",
    "BatchGatewayProjectionLagHigh",
    "BatchGatewayProjectionDeadLetters",
}


def _dashboard() -> dict[str, Any]:
    (path,) = (CHART_DIR / "dashboards").glob("*.json")
    dashboard: dict[str, Any] = json.loads(path.read_text())
    return dashboard


def _panel_queries(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def _alert_rules(value_set: tuple[str, ...] = EVERYTHING_ON) -> list[dict[str, Any]]:
    rule = one(render_chart(value_set), "PrometheusRule")
    return [r for group in rule["spec"]["groups"] for r in group["rules"]]


def _check_query(query: str) -> None:
    names = set(METRIC.findall(query))
    assert names, query
    assert names <= set(SERIES), f"not in the metric catalogue: {names - set(SERIES)}"
    allowed = set().union(*(SERIES[n] for n in names)) | SCRAPE_LABELS
    for grouping in GROUPING.findall(query):
        labels = {label.strip() for label in grouping.split(",")}
        assert labels <= allowed, (query, labels - allowed)
    for metric, matchers in MATCHER.findall(query):
        labels = {m.split("=")[0].rstrip("!~").strip() for m in matchers.split(",")}
        assert labels <= SERIES[metric] | SCRAPE_LABELS, (query, labels)
    assert "tenant" not in query
    assert query.count("(") == query.count(")"), query


@pytest.mark.parametrize(
    "value_set", [EVERYTHING_ON, POD_MONITOR_INSTALL], ids=["service monitor", "pod monitor"]
)
def test_every_alert_queries_catalogue_metrics_of_its_own_namespace(
    value_set: tuple[str, ...],
) -> None:
    rules = _alert_rules(value_set)
    assert {r["alert"] for r in rules} == ALERTS
    for rule in rules:
        _check_query(rule["expr"])
        selectors = MATCHER.findall(rule["expr"])
        assert len(selectors) == len(METRIC.findall(rule["expr"]))
        assert all(f'namespace="{NAMESPACE}"' in matchers for _, matchers in selectors)
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]


def test_alert_thresholds_come_from_the_values() -> None:
    rules = {r["alert"]: r for r in _alert_rules()}
    # EVERYTHING_ON sets the queue wait threshold to 120 s; the others keep their defaults.
    assert rules["BatchGatewayQueueWaitHigh"]["expr"].endswith("> 120")
    assert "histogram_quantile(0.9" in rules["BatchGatewayQueueWaitHigh"]["expr"]
    assert rules["BatchGatewayQueueWaitHigh"]["for"] == "10m"
    assert rules["BatchGatewayJobFailureRateHigh"]["expr"].endswith("> 0.1")
    assert "[30m]" in rules["BatchGatewayJobFailureRateHigh"]["expr"]
    assert "[1h]" in rules["BatchGatewayJobsExpired"]["expr"]
    assert rules["BatchGatewayProcessorsSaturated"]["for"] == "15m"
    assert "> 60" in rules["BatchGatewayProjectionLagHigh"]["expr"]
    assert rules["BatchGatewayRequestFailureRateHigh"]["expr"].endswith("> 0.1")
    assert "[15m]" in rules["BatchGatewayRequestFailureRateHigh"]["expr"]
    assert rules["BatchGatewayNoExecutingProcessor"]["for"] == "5m"
    assert rules["BatchGatewayComponentDown"]["for"] == "5m"
    off = render_chart((*EVERYTHING_ON, "prometheusRule.rules.jobsExpired.enabled=false"))
    remaining = [
        r["alert"] for g in one(off, "PrometheusRule")["spec"]["groups"] for r in g["rules"]
    ]
    assert set(remaining) == ALERTS - {"BatchGatewayJobsExpired"}


def test_the_projection_lag_event_threshold_is_below_what_the_projector_counts() -> None:
    """batch_gateway_projector_lag_events stops at LAG_COUNT_CAP: a threshold at or above it
    could never fire."""
    (expr,) = [r["expr"] for r in _alert_rules() if r["alert"] == "BatchGatewayProjectionLagHigh"]
    threshold = re.search(r"batch_gateway_projector_lag_events\{[^}]*\}\) > ([0-9.]+)", expr)
    assert threshold is not None, expr
    assert float(threshold.group(1)) < LAG_COUNT_CAP
    rules = chart_schema()["properties"]["prometheusRule"]["properties"]["rules"]["properties"]
    assert rules["projectionLagHigh"]["properties"]["thresholdEvents"]["maximum"] < LAG_COUNT_CAP


def test_thresholds_given_as_decimals_with_set_render_as_bare_numbers() -> None:
    """helm --set keeps 0.2 as the string "0.2"; PromQL must still get the number."""
    rules = {
        r["alert"]: r["expr"]
        for r in _alert_rules(
            (
                *EVERYTHING_ON,
                "prometheusRule.rules.jobFailureRateHigh.thresholdRatio=0.2",
                "prometheusRule.rules.requestFailureRateHigh.thresholdRatio=0.05",
                "prometheusRule.rules.queueWaitHigh.thresholdSeconds=90.5",
                "prometheusRule.rules.projectionLagHigh.thresholdSeconds=30.5",
            )
        )
    }
    assert rules["BatchGatewayJobFailureRateHigh"].endswith(") > 0.2")
    assert rules["BatchGatewayRequestFailureRateHigh"].endswith(") > 0.05")
    assert rules["BatchGatewayQueueWaitHigh"].endswith(") > 90.5")
    assert ") > 30.5\n" in rules["BatchGatewayProjectionLagHigh"]


def test_component_down_selects_the_label_the_monitors_attach() -> None:
    (expr,) = [r["expr"] for r in _alert_rules() if r["alert"] == "BatchGatewayComponentDown"]
    components = re.search(r'component=~"([^"]+)"', expr)
    assert components is not None, expr
    assert set(components.group(1).split("|")) == set(COMPONENTS)
    assert expr.startswith("up{")
    assert expr.endswith("} == 0")
    # Without the chart's monitors no target has the label: the alert is left out.
    alone = (*THREE_FLAG_INSTALL, "prometheusRule.enabled=true")
    assert "BatchGatewayComponentDown" not in {r["alert"] for r in _alert_rules(alone)}


def test_no_executing_processor_fires_on_absent_or_zero_job_slots() -> None:
    (expr,) = [
        r["expr"] for r in _alert_rules() if r["alert"] == "BatchGatewayNoExecutingProcessor"
    ]
    # Validate-only processors report 0 slots; no processor at all reports nothing.
    assert expr.startswith("absent(batch_gateway_job_slots{")
    assert "sum(batch_gateway_job_slots{" in expr
    assert expr.endswith(") == 0")
    without = (*EVERYTHING_ON, "processor.enabled=false", "processor.autoscaling.enabled=false")
    assert "BatchGatewayNoExecutingProcessor" not in {r["alert"] for r in _alert_rules(without)}


def test_request_failure_rate_divides_failed_by_dispatched_requests() -> None:
    (expr,) = [
        r["expr"] for r in _alert_rules() if r["alert"] == "BatchGatewayRequestFailureRateHigh"
    ]
    failed, _, dispatched = expr.partition("/")
    assert "batch_gateway_requests_failed_total" in failed
    assert "batch_gateway_requests_dispatched_total" in dispatched


def test_the_chart_refuses_both_monitors_at_once() -> None:
    """Each would scrape every target: summed panels and alert ratios would count twice."""
    with pytest.raises(helm_python.HelmError, match="enable one of them, not both"):
        render_chart((*EVERYTHING_ON, "monitoring.podMonitor.enabled=true"))


def test_every_dashboard_query_uses_catalogue_metrics() -> None:
    dashboard = _dashboard()
    queries = _panel_queries(dashboard)
    for query in queries:
        _check_query(query)
        assert 'namespace=~"$namespace"' in query
    # Every family of the catalogue has a panel.
    shown = {
        re.sub(r"_(bucket|sum|count)$", "", name) for q in queries for name in METRIC.findall(q)
    }
    assert set(COUNTERS) | set(GAUGES) | set(HISTOGRAMS) <= shown


def test_the_dashboard_config_map_is_what_grafanas_sidecar_loads() -> None:
    dashboards = [
        m
        for m in of_kind(render_chart(EVERYTHING_ON), "ConfigMap")
        if m["metadata"]["labels"].get("grafana_dashboard") == "1"
    ]
    (config_map,) = dashboards
    (loaded,) = config_map["data"].values()
    assert json.loads(loaded) == _dashboard()
    panels = [p for p in _dashboard()["panels"] if p["type"] != "row"]
    assert all(p["datasource"]["uid"] == "${datasource}" and p["targets"] for p in panels)
    ids = [p["id"] for p in _dashboard()["panels"]]
    assert len(ids) == len(set(ids))
