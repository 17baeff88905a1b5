"""The Litestar application of the API server."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from litestar import Litestar, Request
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController

from batch_gateway.clock import Clock, system_clock
from batch_gateway.gateway.batch_event_stream import BatchEventsController
from batch_gateway.gateway.batches import BatchesController
from batch_gateway.gateway.console import console_route_handlers
from batch_gateway.gateway.console.rendering import template_config
from batch_gateway.gateway.errors import EXCEPTION_HANDLERS
from batch_gateway.gateway.files import FilesController
from batch_gateway.gateway.health import HealthController
from batch_gateway.gateway.openapi import document_optional_parameters, document_request_bodies
from batch_gateway.gateway.request_ids import RequestIdMiddleware, ensure_request_id
from batch_gateway.gateway.request_spans import RequestSpanMiddleware
from batch_gateway.gateway.services import ApiServices, open_api_services
from batch_gateway.gateway.settings import ApiServerSettings
from batch_gateway.gateway.tenancy import TenantResolver

# Multipart framing and the small text fields around the file itself.
FORM_OVERHEAD_BYTES = 1024 * 1024


def create_app(settings: ApiServerSettings, clock: Clock = system_clock) -> Litestar:
    resolver = TenantResolver(settings.tenant_header, settings.api_keys)

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with open_api_services(settings, clock) as services:
            app.state.services = services
            yield

    def provide_services(state: State) -> ApiServices:
        services: ApiServices = state.services
        return services

    def provide_tenant(request: Request[Any, Any, Any]) -> str:
        return resolver(request)

    prometheus = PrometheusConfig(
        app_name="batch_gateway", prefix="batch_gateway_api", group_path=True
    )
    app = Litestar(
        route_handlers=[
            FilesController,
            BatchesController,
            BatchEventsController,
            HealthController,
            PrometheusController,
            *(console_route_handlers() if settings.console else []),
        ],
        dependencies={
            "services": Provide(provide_services, sync_to_thread=False),
            "tenant": Provide(provide_tenant, sync_to_thread=False),
            "tenant_resolver": Provide(lambda: resolver, sync_to_thread=False),
        },
        template_config=template_config(),
        exception_handlers=EXCEPTION_HANDLERS,
        # The request id first, so that the span (and every log line) can name it.
        middleware=[RequestIdMiddleware(), RequestSpanMiddleware(), prometheus.middleware],
        before_send=[ensure_request_id],
        lifespan=[lifespan],
        request_max_body_size=settings.files.max_bytes + FORM_OVERHEAD_BYTES,
        # Logging is configured once per process, as JSON (batch_gateway.logs).
        logging_config=None,
        openapi_config=OpenAPIConfig(title="Batch Gateway", version="0.1.0", path="/openapi"),
    )
    document_request_bodies(app.openapi_schema, settings)
    document_optional_parameters(app.openapi_schema)
    return app
