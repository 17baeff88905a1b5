"""Every value set renders with Helm's engine, lints clean in strict mode, and every manifest is
valid: built-in kinds against Kubernetes' own schemas (kubernetes-validate, strict: unknown
fields fail), custom resources against the structural subsets in crd_schemas.py."""

from __future__ import annotations

import copy
import re

import helm_python
import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate  # type: ignore[import-untyped]
import pytest

from tests.helm.chart import (
    EVERYTHING_ON,
    KUBERNETES_VERSION,
    NAMESPACE,
    POD_MONITOR_INSTALL,
    THREE_FLAG_INSTALL,
    VALUE_SETS,
    Manifest,
    lint_chart,
    render_chart,
)
from tests.helm.crd_schemas import CUSTOM_RESOURCE_SCHEMAS, validate_custom_resource
from tests.helm.manifests import COMPONENT_LABEL, container, deployments, of_kind, one

OPTIONAL_KINDS = {
    "HTTPRoute",
    "ServiceMonitor",
    "PodMonitor",
    "PrometheusRule",
    "HorizontalPodAutoscaler",
}


def _validate(manifest: Manifest) -> None:
    if (manifest["apiVersion"], manifest["kind"]) in CUSTOM_RESOURCE_SCHEMAS:
        validate_custom_resource(manifest)
    else:
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("value_set", VALUE_SETS.values(), ids=VALUE_SETS.keys())
def test_each_value_set_lints_clean_in_strict_mode(value_set: tuple[str, ...]) -> None:
    assert lint_chart(value_set) == []


@pytest.mark.parametrize("value_set", VALUE_SETS.values(), ids=VALUE_SETS.keys())
def test_every_rendered_manifest_is_valid_kubernetes(value_set: tuple[str, ...]) -> None:
    manifests = render_chart(value_set)
    assert manifests
    for manifest in manifests:
        _validate(manifest)
        assert manifest["metadata"]["namespace"] == NAMESPACE


def test_the_validators_reject_what_a_cluster_would() -> None:
    """Controls: the checks above fail on a misspelled field, built-in or custom."""
    manifests = render_chart(EVERYTHING_ON) + render_chart(POD_MONITOR_INSTALL)
    deployment = copy.deepcopy(deployments(render_chart(EVERYTHING_ON))["processor"])
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate(deployment)
    for kind in ("HTTPRoute", "ServiceMonitor", "PodMonitor"):
        broken = copy.deepcopy(one(manifests, kind))
        broken["spec"]["selectr"] = {}
        with pytest.raises(jsonschema.ValidationError):
            _validate(broken)
    # A PrometheusRule is in both value sets.
    broken = copy.deepcopy(one(render_chart(EVERYTHING_ON), "PrometheusRule"))
    broken["spec"]["selectr"] = {}
    with pytest.raises(jsonschema.ValidationError):
        _validate(broken)
    for kind, endpoints in (("ServiceMonitor", "endpoints"), ("PodMonitor", "podMetricsEndpoints")):
        broken = copy.deepcopy(one(manifests, kind))
        # A Kubernetes label name is not a Prometheus one: the operator rejects it.
        broken["spec"][endpoints][0]["relabelings"][0]["sourceLabels"] = [COMPONENT_LABEL]
        with pytest.raises(jsonschema.ValidationError):
            _validate(broken)


def test_optional_resources_are_off_by_default_and_each_switches_on() -> None:
    default_kinds = {m["kind"] for m in render_chart(THREE_FLAG_INSTALL)}
    assert default_kinds & OPTIONAL_KINDS == set()
    assert default_kinds == {"ConfigMap", "Deployment", "Secret", "Service", "ServiceAccount"}
    everything = render_chart(EVERYTHING_ON)
    for kind in OPTIONAL_KINDS - {"PodMonitor"}:
        one(everything, kind)
    # The PodMonitor replaces the ServiceMonitor; the chart refuses both at once.
    pod_monitored = {m["kind"] for m in render_chart(POD_MONITOR_INSTALL)}
    assert {"PodMonitor", "PrometheusRule"} <= pod_monitored
    assert "ServiceMonitor" not in pod_monitored
    assert "PodMonitor" not in {m["kind"] for m in everything}
    dashboards = [
        m
        for m in of_kind(everything, "ConfigMap")
        if m["metadata"]["labels"].get("grafana_dashboard")
    ]
    assert len(dashboards) == 1


def test_the_http_route_sends_files_and_batches_to_the_api_service() -> None:
    manifests = render_chart(EVERYTHING_ON)
    route = one(manifests, "HTTPRoute")["spec"]
    assert route["parentRefs"] == [
        {"name": "llm-d-inference-gateway", "namespace": "llm-d", "sectionName": "https"}
    ]
    assert route["hostnames"] == ["batch.example.com"]
    (rule,) = route["rules"]
    assert [m["path"] for m in rule["matches"]] == [
        {"type": "PathPrefix", "value": "/v1/files"},
        {"type": "PathPrefix", "value": "/v1/batches"},
        {"type": "PathPrefix", "value": "/console"},
    ]
    (backend,) = rule["backendRefs"]
    service = one(manifests, "Service", backend["name"])
    assert [p["port"] for p in service["spec"]["ports"]] == [backend["port"]]


def test_the_http_route_leaves_the_console_out_when_it_is_off() -> None:
    manifests = render_chart((*EVERYTHING_ON, "apiserver.config.console=false"))
    (rule,) = one(manifests, "HTTPRoute")["spec"]["rules"]
    assert "/console" not in [m["path"]["value"] for m in rule["matches"]]
    configmap = "\n".join(str(m.get("data")) for m in of_kind(manifests, "ConfigMap"))
    assert "console: false" in configmap


def test_a_path_prefix_routes_everything_under_it_and_rewrites_it_away() -> None:
    manifests = render_chart((*EVERYTHING_ON, "apiserver.httpRoute.pathPrefix=/batch-gateway"))
    _validate(one(manifests, "HTTPRoute"))
    (rule,) = one(manifests, "HTTPRoute")["spec"]["rules"]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/batch-gateway"}}]
    assert rule["filters"] == [
        {
            "type": "URLRewrite",
            "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}},
        }
    ]
    with pytest.raises(helm_python.HelmValuesError):
        render_chart((*EVERYTHING_ON, "apiserver.httpRoute.pathPrefix=batch gateway/"))


def _prometheus_label(kubernetes_label: str) -> str:
    """How Kubernetes service discovery spells a label in its __meta_* names."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", kubernetes_label)


def test_monitors_attach_the_component_label_the_alerts_select_on() -> None:
    for value_set, kind, endpoints, role in (
        (EVERYTHING_ON, "ServiceMonitor", "endpoints", "service"),
        (POD_MONITOR_INSTALL, "PodMonitor", "podMetricsEndpoints", "pod"),
    ):
        manifests = render_chart(value_set)
        source = f"__meta_kubernetes_{role}_label_{_prometheus_label(COMPONENT_LABEL)}"
        for endpoint in one(manifests, kind)["spec"][endpoints]:
            assert {"sourceLabels": [source], "targetLabel": "component"} in endpoint[
                "relabelings"
            ], kind
        # Every scraped Service and pod carries that label with its component's name.
        carriers = (
            of_kind(manifests, "Service")
            if role == "service"
            else [d["spec"]["template"] for d in deployments(manifests).values()]
        )
        assert {c["metadata"]["labels"][COMPONENT_LABEL] for c in carriers} == {
            "apiserver",
            "projector",
            "processor",
            "gc",
        }


def test_monitors_scrape_ports_every_component_exposes() -> None:
    manifests = render_chart(EVERYTHING_ON)
    service_monitor = one(manifests, "ServiceMonitor")["spec"]
    scraped_ports = {endpoint["port"] for endpoint in service_monitor["endpoints"]}
    selector = service_monitor["selector"]["matchLabels"]
    services = [
        s
        for s in of_kind(manifests, "Service")
        if selector.items() <= s["metadata"]["labels"].items()
    ]
    assert len(services) == 4
    for service in services:
        assert {p["name"] for p in service["spec"]["ports"]} & scraped_ports
    manifests = render_chart(POD_MONITOR_INSTALL)
    pod_monitor = one(manifests, "PodMonitor")["spec"]
    pod_ports = {endpoint["port"] for endpoint in pod_monitor["podMetricsEndpoints"]}
    for component, deployment in deployments(manifests).items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert pod_monitor["selector"]["matchLabels"].items() <= labels.items(), component
        assert {p["name"] for p in container(deployment)["ports"]} & pod_ports, component


def test_the_autoscaler_owns_the_processor_replica_count() -> None:
    manifests = render_chart(EVERYTHING_ON)
    autoscaler = one(manifests, "HorizontalPodAutoscaler")["spec"]
    processor = deployments(manifests)["processor"]
    assert autoscaler["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": processor["metadata"]["name"],
    }
    assert (autoscaler["minReplicas"], autoscaler["maxReplicas"]) == (1, 20)
    assert "replicas" not in processor["spec"]
    assert deployments(manifests)["apiserver"]["spec"]["replicas"] == 3
    with pytest.raises(helm_python.HelmError, match=r"minReplicas \(21\) must not exceed"):
        render_chart((*EVERYTHING_ON, "processor.autoscaling.minReplicas=21"))


def test_names_stay_dns_labels_for_the_longest_release_name() -> None:
    # Helm allows release names of 53 characters; Service names must be 63-character labels.
    release = "r" * 53
    manifests = render_chart(EVERYTHING_ON, release=release, namespace="other")
    for manifest in manifests:
        name = manifest["metadata"]["name"]
        assert len(name) <= 63, name
        assert manifest["metadata"]["namespace"] == "other"
    assert len({m["metadata"]["name"] for m in of_kind(manifests, "Service")}) == 4
