"""The simulator component: what `batch-gateway simulator` runs, and the same server in-process
for tests and benchmarks (`running_simulator`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from batch_gateway.simulator.server import Simulator
from batch_gateway.simulator.settings import SimulatorSettings
from batch_gateway.simulator.stats import SimulatorStats

logger = logging.getLogger(__name__)

# Connections a benchmark may open at once before the kernel starts refusing them.
LISTEN_BACKLOG = 1024


class RunningSimulator:
    """A simulator serving on `url` (e.g. "http://127.0.0.1:8100"; no trailing slash)."""

    def __init__(self, url: str, simulator: Simulator, runner: web.AppRunner) -> None:
        self.url = url
        self.settings = simulator.settings
        self._simulator = simulator
        self._runner = runner

    @property
    def base_url(self) -> str:
        """Where an OpenAI client points: `url` + "/v1"."""
        return self.url + "/v1"

    def stats(self) -> SimulatorStats:
        """A copy of what the simulator has received and answered so far (as `GET /stats`)."""
        return self._simulator.stats()

    def reset_stats(self) -> None:
        """As `POST /stats/reset`: forget the counts and restart the seeded sequences."""
        self._simulator.reset_stats()

    def metrics_text(self) -> str:
        """What `GET /metrics` answers."""
        return self._simulator.metrics.render().decode()

    async def stop(self) -> None:
        """Stop serving before the `async with` block ends (idempotent): held requests answer
        at once, others get `shutdown_grace_seconds` to finish, then connections close."""
        await self._runner.cleanup()


@contextlib.asynccontextmanager
async def running_simulator(
    settings: SimulatorSettings | None = None,
) -> AsyncIterator[RunningSimulator]:
    """Serve a simulator until the block ends; port 0 picks a free port."""
    settings = settings or SimulatorSettings(port=0)
    simulator = Simulator(settings)
    runner = web.AppRunner(
        simulator.application(),
        access_log=None,
        # A client that gives up frees its slot at once, as vLLM aborts such requests.
        handler_cancellation=True,
        shutdown_timeout=settings.shutdown_grace_seconds,
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.host, settings.port, backlog=LISTEN_BACKLOG)
        await site.start()
        port = runner.addresses[0][1]
        url = f"http://{_url_host(settings.host)}:{port}"
        yield RunningSimulator(url, simulator, runner)
    finally:
        await runner.cleanup()


async def run_simulator(settings: SimulatorSettings, stop: asyncio.Event) -> None:
    async with running_simulator(settings) as simulator:
        logger.info("simulator serving on %s", simulator.url)
        await stop.wait()
        logger.info("simulator stopping")
    logger.info("simulator stopped")


def _url_host(host: str) -> str:
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host
