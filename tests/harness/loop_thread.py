"""A server running in an event loop of its own thread, for tests that block their own.

Tests that drive a server with a synchronous client (the OpenAI SDK) block their thread while
they wait; a server in that thread's loop would stop answering meanwhile. A `LoopThread`
subclass writes `_serve()`, which calls `_ready()` once it answers and returns once `stop` is
set; `with` starts it, waits until it is ready (raising what stopped it, if it failed), and
at the end sets `stop` and joins the thread.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Self


class LoopThread:
    def __init__(self, name: str, start_timeout_seconds: float) -> None:
        self._name = name
        self._start_timeout = start_timeout_seconds
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._started = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None

    def __enter__(self) -> Self:
        self._thread.start()
        if not self._started.wait(self._start_timeout) or self._error is not None:
            raise RuntimeError(f"the {self._name} did not start") from self._error
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stopping)
        self._thread.join(timeout=30)

    def _stopping(self) -> None:
        """In the loop: tell `_serve` to return (subclasses may stop more first)."""
        assert self._stop is not None
        self._stop.set()

    def _ready(self) -> None:
        self._started.set()

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as error:
            self._error = error
            self._started.set()

    async def _run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        await self._serve(self._stop)

    async def _serve(self, stop: asyncio.Event) -> None:
        raise NotImplementedError
