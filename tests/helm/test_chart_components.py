"""The chart and the code cannot drift apart: every component, started with exactly the
arguments, environment and files the chart renders (pointed at this test's Redis, PostgreSQL
and storage), becomes ready, runs a batch, shows it in its metrics, and stops on SIGTERM within
the grace period the chart gives it.

Replaced, and only these: the Secret's values (the test's servers), the listening port (tests
run side by side), the Redis key prefix and PostgreSQL schema (isolation), and the addresses of
services that live in a cluster (the S3 endpoint, and the inference gateway when a batch runs).
"""

from __future__ import annotations

import base64
import contextlib
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import httpx
import pytest
import yaml
from openai import OpenAI
from prometheus_client.parser import text_string_to_metric_families

from batch_gateway.simulator import SimulatorSettings
from batch_gateway.stack.redis_server import free_port
from tests.execution.results import file_lines, requests_file
from tests.harness.batch_helpers import upload, wait_until_status
from tests.harness.chart_pods import (
    Manifest,
    PodProcess,
    RenderedPod,
    config_maps,
    deployment,
)
from tests.harness.s3_server import S3Endpoint
from tests.harness.simulator_thread import SimulatorThread
from tests.helm.chart import (
    CHART_DIR,
    EVERYTHING_ON,
    S3_INSTALL,
    THREE_FLAG_INSTALL,
    render_chart,
)

COMPONENTS = ("apiserver", "projector", "processor", "gc")
# Which metric families each component may export (docs/metrics.md); storage is everyone's.
SHARED = ("batch_gateway_storage_",)
OWN_METRICS: dict[str, tuple[str, ...]] = {
    "apiserver": ("batch_gateway_api_",),
    "projector": ("batch_gateway_projector_", "batch_gateway_batches"),
    "processor": (
        "batch_gateway_queue_",
        "batch_gateway_job",
        "batch_gateway_validations",
        "batch_gateway_requests_",
        "batch_gateway_dispatch_",
        "batch_gateway_gateway_",
        "batch_gateway_webhook_",
    ),
    "gc": ("batch_gateway_gc_",),
}
TERMINAL = ("completed", "failed", "expired", "cancelled")
SECRET_NAME = "batch-gateway-secrets"
METRIC_NAME = re.compile(r"\bbatch_gateway_[a-z0-9_]+")
# A histogram is queried by its series (`_bucket`, ...), a counter by `_total`; a scrape names
# the family, which it lists even before the first labelled sample exists.
SERIES_SUFFIX = re.compile(r"_(bucket|count|sum|total|created)$")


class ChartStack:
    """The chart's four components as local processes."""

    def __init__(self, manifests: Sequence[Manifest], root: Path, secrets: Mapping[str, str]):
        self.manifests = manifests
        self._root = root
        self._secrets = dict(secrets)
        self.processes: dict[str, PodProcess] = {}
        self.ports: dict[str, int] = {}

    def pod(self, component: str) -> RenderedPod:
        return RenderedPod(
            deployment(self.manifests, component),
            config_maps=config_maps(self.manifests),
            secrets=self._all_secrets(),
            root=self._root / component,
            claims=self._root / "claims",
        )

    def _all_secrets(self) -> dict[str, dict[str, str]]:
        # The user's Secret as llm-d's guide has it created, and the chart's generated ones.
        secrets = {SECRET_NAME: self._secrets}
        for manifest in self.manifests:
            if manifest.get("kind") == "Secret":
                data = manifest.get("stringData") or {}
                secrets[manifest["metadata"]["name"]] = dict(data) | _decoded(manifest)
        return secrets

    def start(self, component: str, overrides: Mapping[str, str]) -> PodProcess:
        pod = self.pod(component)
        port = free_port()
        process = PodProcess(
            pod,
            {"BATCH_GATEWAY_PORT": str(port), **overrides},
            self._root / f"{component}.log",
        )
        self.processes[component] = process
        self.ports[component] = port
        readiness = pod.container["readinessProbe"]["httpGet"]
        liveness = pod.container["livenessProbe"]["httpGet"]
        assert (readiness["path"], liveness["path"]) == ("/ready", "/health")
        # The probes must reach the port the component's rendered config makes it listen on.
        assert pod.port(readiness["port"]) == _configured_port(pod)
        process.wait_until_ready(port, readiness["path"])
        assert httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200
        return process

    def logs(self) -> str:
        return "\n".join(f"--- {name} ---\n{p.log()}" for name, p in self.processes.items())

    def stop_all(self) -> dict[str, int]:
        codes = {}
        for component, process in self.processes.items():
            grace = float(self.pod(component).spec.get("terminationGracePeriodSeconds", 30))
            codes[component] = process.stop(grace)
        return codes

    def metric_families(self) -> dict[str, set[str]]:
        """The batch_gateway_* metric families each running component exports."""
        families: dict[str, set[str]] = {}
        for component, port in self.ports.items():
            text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
            families[component] = {
                _family(family.name)
                for family in text_string_to_metric_families(text)
                if family.name.startswith("batch_gateway_")
            }
        return families


def _decoded(manifest: Manifest) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in (manifest.get("data") or {}).items()}


def _configured_port(pod: RenderedPod) -> int:
    config_file = pod.environment["BATCH_GATEWAY_CONFIG"]
    port = yaml.safe_load(Path(config_file).read_text())["port"]
    assert isinstance(port, int)
    return port


@pytest.fixture
def chart_root(tmp_path: Path) -> Path:
    return tmp_path / "chart"


@contextlib.contextmanager
def chart_stack(
    manifests: Sequence[Manifest], root: Path, secrets: Mapping[str, str]
) -> Iterator[ChartStack]:
    stack = ChartStack(manifests, root, secrets)
    try:
        yield stack
    finally:
        for process in stack.processes.values():
            if process.process.poll() is None:
                process.process.kill()
                process.process.wait()


def _secrets(redis_url: str, postgres_url: str, s3_secret: str = "") -> dict[str, str]:
    secrets = {"redis-url": redis_url, "postgresql-url": postgres_url}
    if s3_secret:
        secrets["s3-secret-access-key"] = s3_secret
    return secrets


def _isolation(key_prefix: str, pg_schema: str) -> dict[str, str]:
    return {"BATCH_GATEWAY_KEY_PREFIX": key_prefix, "BATCH_GATEWAY_POSTGRES_SCHEMA": pg_schema}


def test_the_three_flag_install_runs_a_batch_and_shows_it_in_metrics_and_dashboards(
    redis_url: str, postgres_url: str, key_prefix: str, pg_schema: str, chart_root: Path
) -> None:
    manifests = render_chart(THREE_FLAG_INSTALL)
    isolation = _isolation(key_prefix, pg_schema)
    with (
        SimulatorThread(SimulatorSettings(port=0)) as simulator,
        chart_stack(manifests, chart_root, _secrets(redis_url, postgres_url)) as stack,
    ):
        for component in COMPONENTS:
            gateway = {"BATCH_GATEWAY_GLOBAL_INFERENCE_GATEWAY_URL": simulator.url}
            stack.start(component, isolation | (gateway if component == "processor" else {}))
        api = f"http://127.0.0.1:{stack.ports['apiserver']}"
        tenant_header = _tenant_header(stack.pod("apiserver"))
        with OpenAI(
            base_url=f"{api}/v1",
            api_key="sk-from-the-caller",
            max_retries=0,
            default_headers={tenant_header: "team-a"},
        ) as client:
            batch = client.batches.create(
                input_file_id=upload(client, requests_file(20)),
                endpoint="/v1/chat/completions",
                completion_window="24h",
            )
            done = wait_until_status(client, batch.id, TERMINAL, timeout=60)
            assert done.status == "completed", (done.errors, stack.logs())
            assert done.request_counts is not None
            assert done.request_counts.completed == 20
            assert len(file_lines(client, done.output_file_id)) == 20

        _wait_for_metric(
            stack, "projector", 'batch_gateway_batches_finished_total{status="completed"}'
        )
        families = stack.metric_families()
        missing = _dashboard_and_alert_metrics() - set().union(*families.values())
        assert not missing, f"dashboards and alerts query metrics no component exports: {missing}"
        for component, names in families.items():
            # A component exporting another's gauges (at 0) would skew every sum and min.
            foreign = {n for n in names if not n.startswith(OWN_METRICS[component] + SHARED)}
            assert not foreign, f"{component} exports others' metrics: {foreign}"
        assert stack.stop_all() == dict.fromkeys(COMPONENTS, 0)


def _tenant_header(pod: RenderedPod) -> str:
    config = yaml.safe_load(Path(pod.environment["BATCH_GATEWAY_CONFIG"]).read_text())
    return str(config.get("tenant_header", "X-MaaS-Username"))


def _wait_for_metric(stack: ChartStack, component: str, sample: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = httpx.get(f"http://127.0.0.1:{stack.ports[component]}/metrics").text
        if any(line.startswith(sample) for line in text.splitlines()):
            return
        time.sleep(0.2)
    raise AssertionError(f"{component} never exported {sample}")


def _dashboard_and_alert_metrics() -> set[str]:
    """Every batch_gateway_* series the dashboards and alerts query, as the scrape names it."""
    texts = [path.read_text() for path in (CHART_DIR / "dashboards").glob("*.json")]
    for manifest in render_chart(EVERYTHING_ON):
        if manifest.get("kind") == "PrometheusRule":
            texts.append(yaml.safe_dump(manifest["spec"]))
    return {_family(name) for text in texts for name in METRIC_NAME.findall(text)}


def _family(name: str) -> str:
    return SERIES_SUFFIX.sub("", name)


@pytest.mark.parametrize("component", COMPONENTS)
def test_each_component_of_the_s3_install_becomes_ready_and_stops_on_sigterm(
    component: str,
    redis_url: str,
    postgres_url: str,
    key_prefix: str,
    pg_schema: str,
    s3_endpoint: S3Endpoint,
    chart_root: Path,
) -> None:
    manifests = render_chart(S3_INSTALL)
    secrets = _secrets(redis_url, postgres_url, s3_endpoint.secret_key)
    overrides = _isolation(key_prefix, pg_schema) | {
        "BATCH_GATEWAY_STORAGE_S3_ENDPOINT": s3_endpoint.url
    }
    with chart_stack(manifests, chart_root, secrets) as stack:
        stack.start(component, overrides)
        assert stack.stop_all() == {component: 0}
