"""The API server component: what `batch-gateway apiserver` runs."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import uvicorn
from litestar import Litestar

from batch_gateway.gateway.app import create_app
from batch_gateway.gateway.settings import ApiServerSettings


class ApiServer(uvicorn.Server):
    """uvicorn, ending the event streams as soon as shutdown begins: an open stream would
    otherwise hold the graceful shutdown for its whole timeout. Their clients resume on
    another server with Last-Event-ID."""

    def __init__(self, config: uvicorn.Config, app: Litestar) -> None:
        super().__init__(config)
        self._app = app

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            yield
            # uvicorn re-raises a caught SIGTERM once it has shut down, so the process would
            # die of it (exit 143) before the CLI's cleanup (flushing spans) runs. A graceful
            # stop is a clean exit, as the other components' is.
            self._captured_signals.clear()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        services = getattr(self._app.state, "services", None)
        if services is not None:
            await services.event_fanout.close()
        await super().shutdown(sockets)


def build_server(settings: ApiServerSettings) -> uvicorn.Server:
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        lifespan="on",
        log_config=None,
        access_log=False,
        # On SIGTERM uvicorn stops accepting, then lets in-flight requests finish this long.
        timeout_graceful_shutdown=30,
    )
    return ApiServer(config, app)


async def run_apiserver(settings: ApiServerSettings) -> None:
    await build_server(settings).serve()
