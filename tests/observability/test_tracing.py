"""OpenTelemetry tracing: a batch's trace runs from the client's create call through the log to
the validator, the job's phases, storage, and on to the inference server; with no `OTEL_*`
variables there is no tracing at all. Spans are collected with the SDK's own in-memory
exporter, installed per test and taken away after it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any, cast

import httpx
import pytest
import redis
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from batch_gateway.events import Envelope
from batch_gateway.events.envelope import decode
from batch_gateway.events.keys import StreamKeys
from batch_gateway.processors.settings import GatewaySettings
from batch_gateway.simulator import SimulatorSettings
from batch_gateway.tracing import (
    configure_tracing,
    install_tracer_provider,
    shutdown_tracing,
    tracing_enabled,
)
from tests.execution.results import requests_file, run_batch, wait_for
from tests.harness.live_stack import LiveStack, StartStack
from tests.harness.sdk import sdk_client
from tests.harness.simulator_thread import SimulatorThread

TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C
CLIENT_SPAN_ID = 0xB7AD6B7169203331
CLIENT_TRACEPARENT = f"00-{TRACE_ID:032x}-{CLIENT_SPAN_ID:016x}-01"
REQUESTS = 5
SPANS_TIMEOUT_SECONDS = 30.0


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on for this test, into memory (never OpenTelemetry's global provider)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    install_tracer_provider(provider)
    yield exporter
    shutdown_tracing()
    provider.shutdown()


@pytest.fixture
def simulator() -> Iterator[SimulatorThread]:
    with SimulatorThread(SimulatorSettings(port=0)) as running:
        yield running


def executing_stack(start_stack: StartStack, simulator: SimulatorThread) -> LiveStack:
    overrides: dict[str, Any] = {
        "roles": ["validate", "execute"],
        "commit_interval_seconds": 0.1,
        "global_inference_gateway": GatewaySettings(url=simulator.url),
    }
    return start_stack(processor_overrides=overrides)


def run_traced_batch(stack: LiveStack, traceparent: str) -> str:
    """Run a batch whose every API call carries the client's `traceparent`; its id."""
    headers = {
        stack.settings.tenant_header: f"tenant-{uuid.uuid4().hex[:12]}",
        "traceparent": traceparent,
    }
    with sdk_client(stack, default_headers=headers) as client:
        batch = run_batch(client, requests_file(REQUESTS))
    assert batch.status == "completed", batch
    assert batch.request_counts is not None
    assert batch.request_counts.completed == REQUESTS
    return batch.id


def named(spans: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [span for span in spans.get_finished_spans() if span.name == name]


def only(spans: InMemorySpanExporter, name: str) -> ReadableSpan:
    found = named(spans, name)
    assert len(found) == 1, f"{name}: {[span.name for span in spans.get_finished_spans()]}"
    return found[0]


def parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.span_id)


def trace_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.trace_id)


def test_a_batch_continues_the_clients_trace_down_to_the_inference_server(
    spans: InMemorySpanExporter, start_stack: StartStack, simulator: SimulatorThread
) -> None:
    stack = executing_stack(start_stack, simulator)

    batch_id = run_traced_batch(stack, CLIENT_TRACEPARENT)

    # The job's spans end just after the batch shows as completed.
    wait_for(
        lambda: bool(named(spans, "batch.execute")),
        SPANS_TIMEOUT_SECONDS,
        "the job's span to end",
    )
    create = only(spans, "POST /v1/batches")
    assert create.kind == SpanKind.SERVER
    assert (trace_id(create), parent_id(create)) == (TRACE_ID, CLIENT_SPAN_ID)
    assert create.attributes is not None
    assert create.attributes["http.route"] == "/v1/batches"
    assert create.attributes["http.response.status_code"] == 200
    assert str(create.attributes["batch_gateway.request_id"]).startswith("req_")
    upload = only(spans, "POST /v1/files")
    assert (trace_id(upload), parent_id(upload)) == (TRACE_ID, CLIENT_SPAN_ID)
    retrieves = named(spans, "GET /v1/batches/{batch_id}")
    assert retrieves
    assert {trace_id(retrieve) for retrieve in retrieves} == {TRACE_ID}

    # The validator and the job go on from the create call, through batch.created in the log.
    validate = only(spans, "batch.validate")
    execute = only(spans, "batch.execute")
    assert (trace_id(validate), parent_id(validate)) == (TRACE_ID, span_id(create))
    assert (trace_id(execute), parent_id(execute)) == (TRACE_ID, span_id(create))
    assert execute.attributes is not None
    assert execute.attributes["batch_gateway.batch_id"] == batch_id
    for phase in ("batch.plan", "batch.dispatch", "batch.finalize"):
        span = only(spans, phase)
        assert (trace_id(span), parent_id(span)) == (TRACE_ID, span_id(execute)), phase

    # One client span per attempt, each the parent the inference server was told about.
    attempts = named(spans, "POST /v1/chat/completions")
    assert len(attempts) == REQUESTS
    dispatch = only(spans, "batch.dispatch")
    for attempt in attempts:
        assert attempt.kind == SpanKind.CLIENT
        assert (trace_id(attempt), parent_id(attempt)) == (TRACE_ID, span_id(dispatch))
        assert attempt.attributes is not None
        assert attempt.attributes["http.response.status_code"] == 200
    assert simulator.stats().by_trace_id == {f"{TRACE_ID:032x}": REQUESTS}

    # Storage: the upload's write, the validator's read, the job's writes and reads.
    storage = [span for span in spans.get_finished_spans() if span.name.startswith("storage.")]
    parents = {parent_id(span) for span in storage}
    assert {trace_id(span) for span in storage} == {TRACE_ID}
    assert {span_id(upload), span_id(validate)} <= parents
    assert {"storage.write", "storage.read"} <= {span.name for span in storage}


def test_probes_and_scrapes_make_no_traces(
    spans: InMemorySpanExporter, start_stack: StartStack
) -> None:
    stack = start_stack(with_processor=False)

    for path in ("/health", "/ready", "/metrics"):
        assert httpx.get(f"{stack.base_url}{path}").status_code == 200
    assert httpx.get(f"{stack.base_url}/v1/batches").status_code in (200, 401, 403)

    # The server ends a request's span after its response is on the wire: wait for it.
    deadline = time.monotonic() + 5
    while not spans.get_finished_spans() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert {span.name for span in spans.get_finished_spans()} == {"GET /v1/batches"}


def test_events_carry_the_trace_context_of_whoever_appended_them(
    spans: InMemorySpanExporter,
    start_stack: StartStack,
    simulator: SimulatorThread,
    redis_url: str,
    key_prefix: str,
) -> None:
    stack = executing_stack(start_stack, simulator)

    batch_id = run_traced_batch(stack, CLIENT_TRACEPARENT)

    wait_for(lambda: bool(named(spans, "batch.execute")), SPANS_TIMEOUT_SECONDS, "the job")
    appended_by = {
        type(envelope.event).__struct_config__.tag: envelope.traceparent
        for envelope in read_batch_events(redis_url, key_prefix, batch_id)
    }
    expected = {
        "batch.created": "POST /v1/batches",
        "batch.validated": "batch.validate",
        "batch.progress": "batch.dispatch",
        "batch.finalizing": "batch.finalize",
        "batch.completed": "batch.finalize",
    }
    for event_type, span_name in expected.items():
        context = f"00-{TRACE_ID:032x}-{span_id(only(spans, span_name)):016x}-01"
        assert appended_by[event_type] == context, event_type
    # The claim is appended before the job knows the trace it belongs to.
    assert appended_by["batch.in_progress"] is None


def test_without_otel_variables_nothing_is_traced_or_sent_on(
    monkeypatch: pytest.MonkeyPatch,
    start_stack: StartStack,
    simulator: SimulatorThread,
    redis_url: str,
    key_prefix: str,
) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    assert configure_tracing("processor") is False
    assert not tracing_enabled()
    stack = executing_stack(start_stack, simulator)

    batch_id = run_traced_batch(stack, CLIENT_TRACEPARENT)

    # The client's traceparent is not a pass-through header, and nothing made one up.
    stats = simulator.stats()
    assert stats.requests == REQUESTS
    assert stats.by_trace_id == {}
    events = read_batch_events(redis_url, key_prefix, batch_id)
    assert [(event.traceparent, event.tracestate) for event in events] == [(None, None)] * len(
        events
    )


def read_batch_events(redis_url: str, key_prefix: str, batch_id: str) -> list[Envelope]:
    """The batch's envelopes as the log holds them."""
    client = redis.Redis.from_url(redis_url)
    try:
        entries = cast(
            list[tuple[bytes, dict[bytes, bytes]]],
            client.xrange(StreamKeys(key_prefix).aggregate_stream(batch_id)),
        )
    finally:
        client.close()
    return [decode(fields[b"event"]) for _, fields in entries]
