"""Render and lint the Helm chart with Helm's own engine (helm-python-sdk), no helm binary and
no cluster, and the value sets the chart tests share.

`render_chart(("a.b=c", ...))` is `helm template` with those `--set` flags: the flags are
parsed by Helm's own `--set` parser and applied over `values` (a `-f` file) as the CLI does;
the chart's defaults, its values.schema.json and its templates are Helm's business.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import helm_python
import yaml

CHART_DIR = Path(__file__).resolve().parents[2] / "helm" / "batch-gateway"
RELEASE = "batch-gateway"
NAMESPACE = "batch-gateway"
# The Kubernetes version manifests are linted and validated against.
KUBERNETES_VERSION = "1.31.0"

# llm-d's guide: the install this gateway must be a drop-in replacement for. Each string is
# what helm receives once the shell has removed the quotes of
#   --set processor.config.globalInferenceGateway.url="http://infra-inference-gateway.llm-d.svc:80"
#   --set "apiserver.config.batchAPI.passThroughHeaders={Authorization}"
#   --set global.fileClient.fs.pvcName="batch-gateway-pvc"
THREE_FLAG_INSTALL: tuple[str, ...] = (
    "processor.config.globalInferenceGateway.url=http://infra-inference-gateway.llm-d.svc:80",
    "apiserver.config.batchAPI.passThroughHeaders={Authorization}",
    "global.fileClient.fs.pvcName=batch-gateway-pvc",
)

# A gateway per model (names with dots and slashes, as served models are named), no global one.
MODEL_GATEWAYS_INSTALL: tuple[str, ...] = (
    r"processor.config.modelGateways.meta-llama/Llama-3\.1-8B-Instruct.url=http://gie-llama.llm-d.svc:80",
    r"processor.config.modelGateways.meta-llama/Llama-3\.1-8B-Instruct.maxConcurrency=32",
    r"processor.config.modelGateways.meta-llama/Llama-3\.1-8B-Instruct.tlsInsecureSkipVerify=true",
    "processor.config.modelGateways.mistral.url=https://gie-mistral.llm-d.svc:443",
    "processor.config.modelGateways.mistral.tlsCaCertFile=/etc/ssl/llm-d/ca.crt",
    "processor.config.modelGateways.mistral.requestTimeoutSeconds=120",
    "global.fileClient.fs.pvcName=batch-gateway-pvc",
)

# Files in MinIO: path-style addressing, a fixed region, the bucket created at start.
S3_INSTALL: tuple[str, ...] = (
    "processor.config.globalInferenceGateway.url=http://infra-inference-gateway.llm-d.svc:80",
    "global.fileClient.type=s3",
    "global.fileClient.s3.endpoint=http://minio.minio.svc:9000",
    "global.fileClient.s3.bucket=batch-files",
    "global.fileClient.s3.region=us-east-1",
    "global.fileClient.s3.usePathStyle=true",
    "global.fileClient.s3.autoCreateBucket=true",
    "global.fileClient.s3.accessKeyId=test-access-key",
)

# Every optional resource switched on, every component scaled and tuned.
EVERYTHING_ON: tuple[str, ...] = (
    *THREE_FLAG_INSTALL,
    "apiserver.httpRoute.enabled=true",
    "apiserver.httpRoute.hostnames={batch.example.com}",
    "apiserver.httpRoute.parentRefs[0].name=llm-d-inference-gateway",
    "apiserver.httpRoute.parentRefs[0].namespace=llm-d",
    "apiserver.httpRoute.parentRefs[0].sectionName=https",
    "apiserver.replicaCount=3",
    "apiserver.apiKeysSecretKey=api-keys",
    "monitoring.serviceMonitor.enabled=true",
    "monitoring.serviceMonitor.labels.release=prometheus",
    "prometheusRule.enabled=true",
    "prometheusRule.labels.release=prometheus",
    "prometheusRule.rules.queueWaitHigh.thresholdSeconds=120",
    "grafana.dashboards.enabled=true",
    "processor.autoscaling.enabled=true",
    "processor.autoscaling.maxReplicas=20",
    "processor.config.maxConcurrentJobs=8",
    "processor.config.webhookUrls={https://hooks.example.com/batches}",
    "global.otel.endpoint=http://otel-collector.observability.svc:4318",
    "global.otel.resourceAttributes=deployment.environment=prod",
    "global.imagePullSecrets[0].name=registry",
    "gc.config.dryRun=true",
    "processor.extraEnv[0].name=EXTRA_SETTING",
    "processor.extraEnv[0].value=on",
)

# Pods scraped directly: the PodMonitor instead of EVERYTHING_ON's ServiceMonitor (both at once
# would scrape every target twice, so the chart refuses that), with the alerts that rely on it.
POD_MONITOR_INSTALL: tuple[str, ...] = (
    *THREE_FLAG_INSTALL,
    "monitoring.podMonitor.enabled=true",
    "monitoring.podMonitor.labels.release=prometheus",
    "prometheusRule.enabled=true",
)

VALUE_SETS: dict[str, tuple[str, ...]] = {
    "three-flag install": THREE_FLAG_INSTALL,
    "model gateways": MODEL_GATEWAYS_INSTALL,
    "s3": S3_INSTALL,
    "everything on": EVERYTHING_ON,
    "pod monitor": POD_MONITOR_INSTALL,
}

Manifest = dict[str, Any]


def chart_values(
    set_values: Sequence[str] = (), values: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The user-supplied values: `values` (as from `-f`), then the `--set` flags over them."""
    merged = copy.deepcopy(dict(values or {}))
    if set_values:
        # Helm parses every --set flag into one map in turn, so `a[0].x=1 --set a[0].y=2` sets
        # one list item; its parser reads the flags joined by commas exactly the same way.
        _merge(merged, helm_python.parse_set_string(",".join(set_values)))
    return merged


def render_chart(
    set_values: Sequence[str] = (),
    values: Mapping[str, Any] | None = None,
    *,
    release: str = RELEASE,
    namespace: str = NAMESPACE,
) -> list[Manifest]:
    """`helm template` of the chart: every rendered manifest, parsed, in template order.

    Raises `helm_python.HelmValuesError` when the values break values.schema.json and
    `helm_python.HelmRenderError` when a template fails (`required`, `fail`).
    """
    with helm_python.Chart.load(CHART_DIR) as chart:
        rendered = chart.render(
            chart_values(set_values, values), name=release, namespace=namespace, is_install=True
        )
    manifests: list[Manifest] = []
    for path in sorted(rendered):
        if not path.endswith((".yaml", ".yml")):
            continue
        manifests.extend(doc for doc in yaml.safe_load_all(rendered[path]) if doc)
    return manifests


def render_notes(set_values: Sequence[str] = (), values: Mapping[str, Any] | None = None) -> str:
    """The NOTES.txt a `helm install` with these values prints."""
    with helm_python.Chart.load(CHART_DIR) as chart:
        rendered = chart.render(
            chart_values(set_values, values), name=RELEASE, namespace=NAMESPACE, is_install=True
        )
    return next(text for path, text in rendered.items() if path.endswith("NOTES.txt"))


def lint_chart(
    set_values: Sequence[str] = (),
    values: Mapping[str, Any] | None = None,
    *,
    namespace: str = NAMESPACE,
) -> list[str]:
    """`helm lint --strict`: every finding at warning level or above (none means clean)."""
    report = helm_python.lint(
        CHART_DIR,
        chart_values(set_values, values),
        strict=True,
        namespace=namespace,
        kube_version=f"v{KUBERNETES_VERSION}",
    )
    findings = [m for m in report["messages"] if m["severity"] >= 2]
    return [f"{m['path']}: {m['error']}" for m in findings] + list(report["errors"])


def _merge(into: dict[str, Any], values: Mapping[str, Any]) -> None:
    for key, value in values.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)
