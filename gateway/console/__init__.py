"""The batch console (ADR 0035): server-rendered pages at `/console` that list the caller's
batches, follow one live on its event stream, and create or cancel batches through the API.
Its scripts, styles and the one third-party library (uPlot, for the chart) ship in `static/`;
nothing is fetched from elsewhere at run time."""

from __future__ import annotations

from litestar.static_files import create_static_files_router
from litestar.types import ControllerRouterHandler

from batch_gateway.gateway.console.pages import ConsolePages
from batch_gateway.gateway.console.rendering import STATIC_DIRECTORY
from batch_gateway.gateway.console.sign_in import ConsoleSignIn


def console_route_handlers() -> list[ControllerRouterHandler]:
    static = create_static_files_router(
        path="/console/static",
        directories=[STATIC_DIRECTORY],
        name="console-static",
        include_in_schema=False,
    )
    return [ConsolePages, ConsoleSignIn, static]
