"""`/health`, `/ready` and `/metrics` for components that serve no API of their own."""

from __future__ import annotations

from collections.abc import Mapping

import msgspec
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from batch_gateway.readiness import Check, run_checks


class ProbeServer:
    def __init__(self, host: str, port: int, checks: Mapping[str, Check]) -> None:
        self._host = host
        self._port = port
        self._checks = dict(checks)
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/health", self._health)
        app.router.add_get("/ready", self._ready)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self._host, self._port).start()

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _health(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _ready(self, _: web.Request) -> web.Response:
        results = await run_checks(self._checks)
        ok = all(result == "ok" for result in results.values())
        body = {"status": "ok" if ok else "unavailable", "checks": results}
        return web.Response(
            body=msgspec.json.encode(body),
            status=200 if ok else 503,
            content_type="application/json",
        )

    async def _metrics(self, _: web.Request) -> web.Response:
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})
