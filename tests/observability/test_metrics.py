"""A real batch through the live stack (API, projector, processor against the simulator) moves
the metrics of docs/metrics.md with the right labels, and no label names a tenant."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from openai import OpenAI

from batch_gateway.processors.metrics import MODEL_LABELS
from batch_gateway.processors.settings import GatewaySettings, ProcessorSettings
from tests.execution.conftest import ClientOf, StartExecuting, StartSimulator
from tests.execution.results import TERMINAL, request, requests_file, start_batch
from tests.harness.batch_helpers import jsonl, wait_until_status
from tests.harness.live_stack import LiveStack
from tests.observability.samples import eventually, label_sets, samples, value

COUNT = 6
PHASES = ("validate", "plan", "dispatch", "finalize")
BATCH_PATH = "/v1/batches/{batch_id}"


def _tenant_of(client: OpenAI, stack: LiveStack) -> str:
    return str(client.default_headers[stack.settings.tenant_header])


def _snapshot(model: str) -> dict[str, float]:
    return {
        "dispatched": value("batch_gateway_requests_dispatched_total", model=model),
        "failed_4xx": value("batch_gateway_requests_failed_total", model=model, reason="http_4xx"),
        "attempts": value("batch_gateway_dispatch_duration_seconds_count", model=model),
        "completed": value("batch_gateway_batches_finished_total", status="completed"),
        "valid": value("batch_gateway_validations_total", outcome="valid"),
        "queue_wait_high": value("batch_gateway_queue_wait_seconds_count", priority="high"),
        "writes": value(
            "batch_gateway_storage_operations_total",
            operation="write",
            backend="filesystem",
            outcome="ok",
        ),
        "reads": value(
            "batch_gateway_storage_operations_total",
            operation="read",
            backend="filesystem",
            outcome="ok",
        ),
        "bytes_written": value("batch_gateway_storage_bytes_total", operation="write"),
        "bytes_read": value("batch_gateway_storage_bytes_total", operation="read"),
        "retrievals": value(
            "batch_gateway_api_requests_total",
            method="GET",
            path=BATCH_PATH,
            status_code="200",
            app_name="batch_gateway",
        ),
        **{
            f"phase_{phase}": value("batch_gateway_job_phase_seconds_count", phase=phase)
            for phase in PHASES
        },
    }


def test_a_batch_moves_the_catalogue_metrics(
    start_simulator: StartSimulator, start_executing: StartExecuting, client_of: ClientOf
) -> None:
    sim = start_simulator()
    stack = start_executing(global_inference_gateway=GatewaySettings(url=sim.url))
    client = client_of(stack)
    model = f"obs-model-{uuid.uuid4().hex[:8]}"
    label = MODEL_LABELS.label(model)
    broken = request("bad", model)
    broken["body"]["messages"] = "not a list of messages"  # the simulator answers 400
    content = requests_file(COUNT, model) + jsonl([broken])
    before = _snapshot(label)

    batch = start_batch(client, content, metadata={"priority": "high"})
    done = wait_until_status(client, batch.id, TERMINAL, 30.0)

    assert done.status == "completed", done
    after = _snapshot(label)
    moved = {key: after[key] - before[key] for key in before}
    assert moved["dispatched"] == COUNT + 1
    assert moved["failed_4xx"] == 1
    assert moved["attempts"] == COUNT + 1  # nothing was retried
    assert moved["valid"] == 1
    assert moved["queue_wait_high"] == 1
    for phase in PHASES:
        assert moved[f"phase_{phase}"] == 1, phase
    assert moved["writes"] >= 3  # the input file, a result chunk, the output file
    assert moved["reads"] >= 2  # validation, then execution
    assert moved["bytes_written"] >= len(content)
    assert moved["bytes_read"] >= 2 * len(content)
    assert moved["retrievals"] >= 1
    eventually(
        lambda: (
            value("batch_gateway_batches_finished_total", status="completed")
            == before["completed"] + 1
        ),
        "batches_finished_total{status=completed} counted",
    )
    assert value("batch_gateway_gateway_concurrency_limit", gateway="global") >= 1
    assert value("batch_gateway_job_slots") == ProcessorSettings().max_concurrent_jobs
    _assert_no_label_names(_tenant_of(client, stack), batch.id)


def test_retried_and_failed_requests_are_counted_by_model_and_reason(
    start_simulator: StartSimulator, start_executing: StartExecuting, client_of: ClientOf
) -> None:
    sim = start_simulator(rate_500=1.0)
    route = GatewaySettings(url=sim.url)
    client = client_of(start_executing(global_inference_gateway=route, max_attempts=2))
    model = f"obs-model-{uuid.uuid4().hex[:8]}"
    label = MODEL_LABELS.label(model)
    series: dict[str, dict[str, Any]] = {
        "retried": {"model": label, "reason": "http_5xx"},
        "failed": {"model": label, "reason": "http_5xx"},
    }
    before = {
        kind: value(f"batch_gateway_requests_{kind}_total", **labels)
        for kind, labels in series.items()
    }

    batch = start_batch(client, requests_file(COUNT, model))
    done = wait_until_status(client, batch.id, TERMINAL, 30.0)

    assert done.status == "completed", done
    for kind, labels in series.items():
        moved = value(f"batch_gateway_requests_{kind}_total", **labels) - before[kind]
        assert moved == COUNT, kind


def test_http_metrics_are_labelled_by_route_template_and_status(http: httpx.Client) -> None:
    missing = f"batch_{uuid.uuid4().hex}"
    labels = {"method": "GET", "path": BATCH_PATH, "status_code": "404"}
    before = value("batch_gateway_api_requests_total", app_name="batch_gateway", **labels)

    response = http.get(f"/v1/batches/{missing}")

    assert response.status_code == 404
    # Litestar counts a request once its response has gone out, so the client can be first.
    eventually(
        lambda: (
            value("batch_gateway_api_requests_total", app_name="batch_gateway", **labels)
            == before + 1
        ),
        "the 404 counted under its route template",
    )
    durations = label_sets("batch_gateway_api_request_duration_seconds_count")
    assert {**labels, "app_name": "batch_gateway"} in durations
    assert all(missing not in labels.values() for labels in durations)


def _assert_no_label_names(*values: str) -> None:
    for sample in samples():
        for forbidden in values:
            assert forbidden not in sample.labels.values(), (sample.name, sample.labels)


def test_requests_for_a_model_no_gateway_serves_count_as_other(
    start_simulator: StartSimulator, start_executing: StartExecuting, client_of: ClientOf
) -> None:
    sim = start_simulator()
    routed = f"routed-{uuid.uuid4().hex[:8]}"
    made_up = f"made-up-{uuid.uuid4().hex[:8]}"
    client = client_of(start_executing(model_gateways={routed: GatewaySettings(url=sim.url)}))
    labels = {"model": "other", "reason": "model_not_found"}
    before = value("batch_gateway_requests_failed_total", **labels)

    batch = start_batch(client, requests_file(3, made_up))
    done = wait_until_status(client, batch.id, TERMINAL, 30.0)

    assert done.status == "completed", done
    assert value("batch_gateway_requests_failed_total", **labels) == before + 3
    # The made-up name took no label slot; the configured model has one from the start.
    assert made_up not in {s.labels.get("model") for s in samples()}
    assert MODEL_LABELS.label(routed) == routed
