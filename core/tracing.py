"""Optional OpenTelemetry tracing, switched on by the standard `OTEL_*` environment variables.

Tracing is on in a process when `OTEL_EXPORTER_OTLP_ENDPOINT` or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set, `OTEL_SDK_DISABLED` is not `true` and
`OTEL_TRACES_EXPORTER` is not `none`; spans then go to that collector over OTLP/HTTP in batches.
The SDK itself reads the rest (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`,
`OTEL_TRACES_SAMPLER(_ARG)`, `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_BSP_*`, ...). Otherwise, and
always when the `otel` extra is not installed, every function here is a cheap no-op: no
OpenTelemetry import, no context switch, no header. Context crosses processes as W3C trace
context (`traceparent`, `tracestate`): in HTTP headers, and in the log's envelopes (ADR 0017).

The process's tracer is held here, not in OpenTelemetry's global provider, which can be set
only once per process: tests install a provider with an in-memory exporter and take it away
again (`install_tracer_provider`, `shutdown_tracing`).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping, MutableMapping
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Tracer

logger = logging.getLogger(__name__)

AttributeValue = str | bool | int | float
SpanKind = Literal["internal", "server", "client"]
TRACE_HEADERS = ("traceparent", "tracestate")


class Span(Protocol):
    """What the code does with a span; an OpenTelemetry span is one, and so is the no-op."""

    def set_attribute(self, key: str, value: AttributeValue) -> None: ...

    def is_recording(self) -> bool: ...


class _NoopSpan:
    def set_attribute(self, key: str, value: AttributeValue) -> None:
        pass

    def is_recording(self) -> bool:
        return False


# What `span` returns while tracing is off. Reusable: it only hands back its span.
NO_SPAN: contextlib.AbstractContextManager[Span] = contextlib.nullcontext(_NoopSpan())


class _Tracing:
    """A tracer and the W3C propagator; only built once OpenTelemetry is known to be there."""

    def __init__(self, provider: TracerProvider, owned: bool) -> None:
        from opentelemetry import trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
        from opentelemetry.trace.status import Status, StatusCode

        self.provider = provider
        # Whether this module built the provider (and so shuts it down) or a test lent it.
        self.owned = owned
        self.tracer: Tracer = provider.get_tracer("batch_gateway")
        self.trace = trace
        # W3C only, whatever OTEL_PROPAGATORS says: the log's envelopes store exactly
        # `traceparent`/`tracestate`, and llm-d's router and vLLM read the same.
        self.propagator = TraceContextTextMapPropagator()
        self.status = Status
        self.status_code = StatusCode
        self.kinds = {
            "internal": trace.SpanKind.INTERNAL,
            "server": trace.SpanKind.SERVER,
            "client": trace.SpanKind.CLIENT,
        }


class _Holder:
    # Process-wide, like the logging configuration: spans are started deep inside components
    # (storage, dispatch, the event log) that should not all be handed a tracer.
    tracing: _Tracing | None = None


_holder = _Holder()


def tracing_requested(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the environment asks for traces to be exported."""
    endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    disabled = environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"
    exporter = environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower()
    return bool(endpoint) and not disabled and exporter != "none"


def configure_tracing(component: str) -> bool:
    """Turn tracing on for this process if the environment asks for it; whether it is on."""
    if not tracing_requested():
        return False
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import OTELResourceDetector, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        logger.warning(
            "OTEL_EXPORTER_OTLP_ENDPOINT is set but OpenTelemetry is not installed "
            "(pip install 'batch-gateway[otel]'): tracing is off"
        )
        return False

    attributes: dict[str, AttributeValue] = {"batch_gateway.component": component}
    if "service.name" not in OTELResourceDetector().detect().attributes:
        # Only a default: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win.
        attributes["service.name"] = f"batch-gateway-{component}"
    # The sampler comes from OTEL_TRACES_SAMPLER(_ARG), parent-based by default.
    provider = TracerProvider(resource=Resource.create(attributes), shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    _install(provider, owned=True)
    logger.info("tracing on: spans of %s go to the OTLP collector", component)
    return True


def install_tracer_provider(provider: TracerProvider) -> None:
    """Trace with `provider` (tests: one with an in-memory exporter); `shutdown_tracing`
    takes it away again without shutting it down."""
    _install(provider, owned=False)


def _install(provider: TracerProvider, owned: bool) -> None:
    if _holder.tracing is not None:
        raise RuntimeError("tracing is already configured in this process")
    _holder.tracing = _Tracing(provider, owned)


def shutdown_tracing() -> None:
    """Flush and stop the exporter (a component stopping), or forget a lent provider."""
    tracing, _holder.tracing = _holder.tracing, None
    if tracing is not None and tracing.owned:
        tracing.provider.shutdown()


def tracing_enabled() -> bool:
    return _holder.tracing is not None


def span(
    name: str,
    *,
    kind: SpanKind = "internal",
    parent: Mapping[str, str] | None = None,
    attributes: Mapping[str, AttributeValue] | None = None,
    only_within_trace: bool = False,
    current: bool = True,
) -> contextlib.AbstractContextManager[Span]:
    """A span around a `with` block, current inside it. Its parent is the current span, or the
    W3C context in `parent` (a `traceparent`/`tracestate` carrier; an empty one starts a new
    trace). With `only_within_trace`, no span is made unless the block already runs within a
    trace: routine work (a storage call) is not worth a trace of its own. With `current`
    false the span is not made current, so nothing started inside the block is its child: a
    leaf that may safely wrap an async generator's `yield` (a context attached there would
    leak into, and be detached from, the generator's consumer).

    An exception leaving the block is recorded on the span and sets its status to error."""
    tracing = _holder.tracing
    if tracing is None:
        return NO_SPAN
    context = tracing.propagator.extract(parent) if parent is not None else None
    if (
        only_within_trace
        and not tracing.trace.get_current_span(context).get_span_context().is_valid
    ):
        return NO_SPAN
    if not current:
        return _leaf(tracing, name, context, kind, attributes)
    return tracing.tracer.start_as_current_span(
        name, context=context, kind=tracing.kinds[kind], attributes=attributes
    )


@contextlib.contextmanager
def _leaf(
    tracing: _Tracing,
    name: str,
    context: Context | None,
    kind: SpanKind,
    attributes: Mapping[str, AttributeValue] | None,
) -> Iterator[Span]:
    leaf = tracing.tracer.start_span(
        name, context=context, kind=tracing.kinds[kind], attributes=attributes
    )
    try:
        yield leaf
    except Exception as error:  # not a cancellation, nor a consumer that stopped early
        leaf.record_exception(error)
        leaf.set_status(tracing.status(tracing.status_code.ERROR, type(error).__name__))
        raise
    finally:
        leaf.end()


def mark_error(span: Span, description: str) -> None:
    """Set a span's status to error without an exception (a 5xx answer, a failed request)."""
    tracing = _holder.tracing
    set_status = getattr(span, "set_status", None)  # the no-op span has none
    if tracing is not None and set_status is not None:
        set_status(tracing.status(tracing.status_code.ERROR, description))


def inject(carrier: MutableMapping[str, str]) -> None:
    """Write the current span's `traceparent` (and `tracestate`) into `carrier`; nothing when
    tracing is off or no span is current."""
    tracing = _holder.tracing
    if tracing is not None:
        tracing.propagator.inject(carrier)


def current_trace_context() -> dict[str, str]:
    """The current span's W3C trace context as a carrier; empty when there is none."""
    carrier: dict[str, str] = {}
    inject(carrier)
    return carrier


def with_trace_headers(headers: Mapping[str, str]) -> Mapping[str, str]:
    """`headers` with the current span's trace context in place of any they carry (lower-case
    names); `headers` itself, untouched, when tracing is off or no span is current."""
    context = current_trace_context()
    if not context:
        return headers
    return {
        **{name: value for name, value in headers.items() if name not in TRACE_HEADERS},
        **context,
    }
