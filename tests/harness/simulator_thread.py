"""The inference simulator serving from a thread of its own, for tests that block.

Tests driving a live stack with the (synchronous) OpenAI SDK block their own thread while they
wait; a simulator in that thread's event loop would stop answering meanwhile. This one keeps its
own loop, and `stats()` reads the counts in that loop, so they are never read mid-update.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from types import TracebackType

from batch_gateway.simulator import SimulatorSettings, SimulatorStats, running_simulator
from batch_gateway.simulator.component import RunningSimulator

START_TIMEOUT_SECONDS = 10.0


class SimulatorThread:
    def __init__(self, settings: SimulatorSettings) -> None:
        self._settings = settings
        self._thread = threading.Thread(target=self._main, name="simulator", daemon=True)
        self._started = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._running: RunningSimulator | None = None
        self._error: BaseException | None = None

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

    def __enter__(self) -> SimulatorThread:
        self._thread.start()
        if not self._started.wait(START_TIMEOUT_SECONDS) or self._error is not None:
            raise RuntimeError("the simulator did not start") from self._error
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as error:
            self._error = error
            self._started.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with running_simulator(self._settings) as running:
            self._running = running
            self._started.set()
            await self._stop.wait()
