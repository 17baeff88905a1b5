"""A server span per API call, continuing the caller's trace when it sends `traceparent`.

Litestar's own OpenTelemetry plugin needs OpenTelemetry's ASGI instrumentation, which also
makes a span for every ASGI message: thousands for one event stream. This middleware makes one
span per call, named after the route template (`POST /v1/batches`,
`GET /v1/batches/{batch_id}`), and does nothing at all while tracing is off.
"""

from __future__ import annotations

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from batch_gateway.logs import request_id_var
from batch_gateway.tracing import TRACE_HEADERS, AttributeValue, mark_error, span, tracing_enabled

_TRACE_HEADER_BYTES = {name.encode(): name for name in TRACE_HEADERS}
# Kubelet probes and Prometheus scrapes: every few seconds each, a trace of their own apiece
# would drown the collector in root spans of no interest.
UNTRACED_PATHS = frozenset({"/health", "/ready", "/metrics"})


class RequestSpanMiddleware(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        if not tracing_enabled() or scope["path"] in UNTRACED_PATHS:
            await next_app(scope, receive, send)
            return
        method = str(scope.get("method", "GET"))
        route = scope.get("path_template") or scope["path"]
        attributes: dict[str, AttributeValue] = {
            "http.request.method": method,
            "http.route": route,
            "url.path": scope["path"],
            "url.scheme": scope.get("scheme", "http"),
        }
        client = scope.get("client")
        if client is not None:
            attributes["client.address"] = client[0]
        request_id = request_id_var.get()
        if request_id is not None:
            attributes["batch_gateway.request_id"] = request_id
        caller = {
            _TRACE_HEADER_BYTES[name]: value.decode("latin-1")
            for name, value in scope["headers"]
            if name in _TRACE_HEADER_BYTES
        }
        with span(f"{method} {route}", kind="server", parent=caller, attributes=attributes) as call:

            async def send_noting_status(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                    call.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        mark_error(call, f"HTTP {status}")
                await send(message)

            await next_app(scope, receive, send_noting_status)
