"""The inference simulator serving from a thread of its own, for tests that block
(`LoopThread`); `stats()` reads the counts in its loop, so they are never read mid-update."""

from __future__ import annotations

import asyncio
import concurrent.futures

from batch_gateway.simulator import SimulatorSettings, SimulatorStats, running_simulator
from batch_gateway.simulator.component import RunningSimulator
from tests.harness.loop_thread import LoopThread

START_TIMEOUT_SECONDS = 10.0


class SimulatorThread(LoopThread):
    def __init__(self, settings: SimulatorSettings) -> None:
        super().__init__("simulator", START_TIMEOUT_SECONDS)
        self._settings = settings
        self._running: RunningSimulator | None = None

    @property
    def url(self) -> str:
        assert self._running is not None, "the simulator is not running"
        return self._running.url

    def stats(self) -> SimulatorStats:
        """What the simulator has received and answered so far."""
        running, loop = self._running, self._loop
        assert running is not None, "the simulator is not running"
        assert loop is not None

        async def snapshot() -> SimulatorStats:
            return running.stats()

        future: concurrent.futures.Future[SimulatorStats] = asyncio.run_coroutine_threadsafe(
            snapshot(), loop
        )
        return future.result(timeout=START_TIMEOUT_SECONDS)

    async def _serve(self, stop: asyncio.Event) -> None:
        async with running_simulator(self._settings) as running:
            self._running = running
            self._ready()
            await stop.wait()
