"""The API server component: what `batch-gateway apiserver` runs."""

from __future__ import annotations

import uvicorn

from batch_gateway.gateway.app import create_app
from batch_gateway.settings import ApiServerSettings


def build_server(settings: ApiServerSettings) -> uvicorn.Server:
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        lifespan="on",
        log_config=None,
        access_log=False,
        # On SIGTERM uvicorn stops accepting, then lets in-flight requests finish this long.
        timeout_graceful_shutdown=30,
    )
    return uvicorn.Server(config)


async def run_apiserver(settings: ApiServerSettings) -> None:
    await build_server(settings).serve()
