"""Liveness and readiness of the API server."""

from __future__ import annotations

import msgspec
from litestar import Controller, Response, get

from batch_gateway.gateway.dependencies import Services
from batch_gateway.readiness import Check, run_checks


class HealthStatus(msgspec.Struct, frozen=True):
    status: str
    checks: dict[str, str] = msgspec.field(default_factory=dict)


class HealthController(Controller):
    include_in_schema = False

    @get("/health")
    async def health(self) -> HealthStatus:
        """Alive as long as the process serves HTTP; dependencies are /ready's business."""
        return HealthStatus("ok")

    @get("/ready")
    async def ready(self, services: Services) -> Response[HealthStatus]:
        checks: dict[str, Check] = {
            "redis": services.redis.ping,
            "postgres": lambda: _select_one(services),
            "storage": services.storage.check,
        }
        results = await run_checks(checks)
        ok = all(result == "ok" for result in results.values())
        return Response(
            HealthStatus("ok" if ok else "unavailable", results), status_code=200 if ok else 503
        )


async def _select_one(services: Services) -> None:
    async with services.pool.connection(timeout=2) as conn:
        await conn.execute("SELECT 1")
