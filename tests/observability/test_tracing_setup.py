"""How tracing is switched on and off: the `OTEL_*` variables, the OTLP export it then makes (to
a stand-in collector that decodes OpenTelemetry's own protobuf), its absence when the `otel`
extra is not installed, the headers sent downstream, and the trace context in envelopes."""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider

from batch_gateway.events import Envelope, EventLog, FileDeleted
from batch_gateway.events.envelope import decode, encode
from batch_gateway.tracing import (
    configure_tracing,
    install_tracer_provider,
    shutdown_tracing,
    span,
    tracing_enabled,
    tracing_requested,
    with_trace_headers,
)

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
_OTEL_VARIABLES = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_SDK_DISABLED",
    "OTEL_TRACES_EXPORTER",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
)


@pytest.mark.parametrize(
    ("environ", "requested"),
    [
        ({}, False),
        ({"OTEL_SERVICE_NAME": "x"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "false"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, False),
    ],
)
def test_the_standard_variables_switch_tracing_on(environ: dict[str, str], requested: bool) -> None:
    assert tracing_requested(environ) is requested


class _Collector(http.server.BaseHTTPRequestHandler):
    received: list[tuple[str, bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet


@pytest.fixture
def collector(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, bytes]]]:
    """An OTLP/HTTP endpoint that keeps what it is sent; the environment points at it."""
    received: list[tuple[str, bytes]] = []
    handler = type("Collector", (_Collector,), {"received": received})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    for name in _OTEL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
    try:
        yield received
    finally:
        shutdown_tracing()
        server.shutdown()
        server.server_close()


def exported(received: list[tuple[str, bytes]]) -> tuple[dict[str, str], list[str]]:
    """The resource attributes and span names of everything the collector received."""
    resource: dict[str, str] = {}
    names: list[str] = []
    for path, body in received:
        assert path == "/v1/traces"
        for spans in ExportTraceServiceRequest.FromString(body).resource_spans:
            resource |= {kv.key: kv.value.string_value for kv in spans.resource.attributes}
            names += [span.name for scope in spans.scope_spans for span in scope.spans]
    return resource, names


def test_spans_are_exported_over_otlp_http_named_after_the_component(
    collector: list[tuple[str, bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test")
    assert configure_tracing("gc") is True
    with span("gc.sweep"):
        pass

    shutdown_tracing()  # flushes the batch processor

    resource, names = exported(collector)
    assert names == ["gc.sweep"]
    assert resource["service.name"] == "batch-gateway-gc"
    assert resource["batch_gateway.component"] == "gc"
    assert resource["deployment.environment"] == "test"
    assert not tracing_enabled()


def test_otel_service_name_and_sampler_are_the_sdks(
    collector: list[tuple[str, bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "batch-processor-eu")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0")
    assert configure_tracing("processor") is True
    with span("batch.unsampled") as unsampled:
        assert not unsampled.is_recording()
    # Parent-based: a caller's sampling decision is kept, whatever the ratio.
    with span("batch.sampled", parent={"traceparent": TRACEPARENT}) as sampled:
        assert sampled.is_recording()

    shutdown_tracing()

    resource, names = exported(collector)
    assert names == ["batch.sampled"]
    assert resource["service.name"] == "batch-processor-eu"


def test_without_the_otel_extra_every_component_imports_and_tracing_stays_off() -> None:
    program = """
import sys

class NoOpenTelemetry:
    def find_spec(self, name, path=None, target=None):
        if name == "opentelemetry" or name.startswith("opentelemetry."):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None

sys.meta_path.insert(0, NoOpenTelemetry())
import batch_gateway.cli
from batch_gateway.tracing import configure_tracing, current_trace_context, span
from batch_gateway.tracing import with_trace_headers

assert configure_tracing("processor") is False
with span("batch.plan", parent={"traceparent": "x"}) as plan:
    plan.set_attribute("batch_gateway.batch_id", "batch_1")
assert with_trace_headers({"authorization": "Bearer t"}) == {"authorization": "Bearer t"}
assert current_trace_context() == {}
assert not any(name.startswith("opentelemetry") for name in sys.modules)
print("off")
"""
    environ = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", program], env=environ, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "off"
    assert "OpenTelemetry is not installed" in result.stderr


@pytest.fixture
def tracing_on() -> Iterator[None]:
    provider = TracerProvider()
    install_tracer_provider(provider)
    yield
    shutdown_tracing()
    provider.shutdown()


def test_downstream_headers_get_the_current_trace_context_in_place_of_a_captured_one(
    tracing_on: None,
) -> None:
    captured = {"authorization": "Bearer t", "traceparent": TRACEPARENT, "tracestate": "a=1"}
    assert with_trace_headers(captured) is captured  # no span: nothing to continue from

    with span("POST /v1/chat/completions", kind="client", parent={"traceparent": TRACEPARENT}):
        sent = with_trace_headers(captured)

    assert sent["authorization"] == "Bearer t"
    assert sent["traceparent"].split("-")[1] == TRACEPARENT.split("-")[1]
    assert sent["traceparent"] != TRACEPARENT  # the parent is now our client span
    assert "tracestate" not in sent  # it went with the replaced traceparent
    assert captured["traceparent"] == TRACEPARENT


def test_captured_headers_pass_untouched_while_tracing_is_off() -> None:
    captured = {"authorization": "Bearer t", "traceparent": TRACEPARENT}
    with span("POST /v1/chat/completions", kind="client"):
        assert with_trace_headers(captured) is captured


def test_envelopes_keep_their_trace_context_and_old_ones_still_decode() -> None:
    traced = Envelope(
        event_id="evt_1", aggregate_id="file-1", aggregate_version=2, tenant="t",
        occurred_at=1.5, event=FileDeleted(deleted_at=1), traceparent=TRACEPARENT,
        tracestate="vendor=x",
    )  # fmt: skip
    assert decode(encode(traced)[1]) == traced
    assert traced.trace_context == {"traceparent": TRACEPARENT, "tracestate": "vendor=x"}
    untraced = Envelope(
        event_id="evt_2", aggregate_id="file-1", aggregate_version=3, tenant="t",
        occurred_at=2.5, event=FileDeleted(deleted_at=2),
    )  # fmt: skip
    document = encode(untraced)[1]
    assert b"trace" not in document  # written before tracing existed, or with it off
    assert decode(document).trace_context == {}


async def test_an_oversized_tracestate_is_not_stored_with_every_event(
    tracing_on: None, event_log: EventLog
) -> None:
    short, long = "vendor=x", ",".join(f"v{n}=" + "x" * 240 for n in range(8))
    for tracestate, stored in ((short, short), (long, None)):
        parent = {"traceparent": TRACEPARENT, "tracestate": tracestate}
        with span("POST /v1/files", kind="server", parent=parent):
            [envelope] = event_log.prepare("file-1", "t", 0, [FileDeleted(deleted_at=1)])
        assert envelope.tracestate == stored
        assert envelope.traceparent is not None
