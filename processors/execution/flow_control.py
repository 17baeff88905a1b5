"""A gateway's concurrency for batch traffic: AIMD, an admission gate, and fair slots.

The limit starts at the gateway's `max_concurrency` and moves with what the server says: each
success adds 1/limit (about +1 per round of requests), a 429, 5xx or connection error halves
it (at most once per `cooldown` so one burst of errors counts once). It never leaves
[min, max] (ADR 0012).

The admission gate (admission.py) closes the limit while the server's metrics say interactive
traffic needs the capacity: nothing new is sent, requests in flight finish. Reopened, the limit
starts again at the minimum and doubles each round (slow start) up to where it was when the
gate closed, then grows additively: the waiting requests are let in gradually, not at once.

Which waiting request gets a free slot is weighted fair queueing (fair_share.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Mapping

from batch_gateway.processors.execution.fair_share import FairQueue, Flow


class AdaptiveLimit:
    def __init__(
        self,
        maximum: int,
        minimum: int = 1,
        cooldown_seconds: float = 1.0,
        weights: Mapping[str, float] | None = None,
    ) -> None:
        self.maximum = maximum
        self.minimum = max(1, min(minimum, maximum))
        self.limit = float(maximum)
        self.in_flight = 0
        self.closed = False
        self._cooldown = cooldown_seconds
        self._last_decrease = 0.0
        # Slow start grows the limit by 1 per success (doubling per round) below this.
        self._ramp_to = float(maximum)
        self._queue = FairQueue(weights)

    @property
    def waiting(self) -> int:
        return len(self._queue)

    @contextlib.asynccontextmanager
    async def slot(self, flow: Flow) -> AsyncIterator[None]:
        await self.acquire(flow)
        try:
            yield
        finally:
            self.release()

    async def acquire(self, flow: Flow) -> None:
        if not self.closed and self.in_flight < int(self.limit) and not self._queue:
            self.in_flight += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._queue.push(flow, waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release()  # we were handed a slot we will not use
            else:
                self._queue.remove(flow, waiter)
            raise

    def release(self) -> None:
        self.in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        while not self.closed and self.in_flight < int(self.limit):
            waiter = self._queue.pop()
            if waiter is None:
                return
            if not waiter.done():
                self.in_flight += 1
                waiter.set_result(None)

    def on_success(self) -> None:
        if self.limit < self._ramp_to:
            self.limit = min(self._ramp_to, self.limit + 1.0)
        else:
            self.limit = min(float(self.maximum), self.limit + 1.0 / self.limit)
        self._wake()

    def on_overload(self) -> None:
        now = time.monotonic()
        if now - self._last_decrease < self._cooldown:
            return
        self._last_decrease = now
        self.limit = max(float(self.minimum), self.limit / 2)
        self._ramp_to = self.limit

    def close(self) -> None:
        """Send nothing new until `open`."""
        if not self.closed:
            self.closed = True
            self._ramp_to = self.limit

    def open(self) -> None:
        """Send again, from the minimum, ramping up to where the limit was."""
        if self.closed:
            self.closed = False
            self.limit = float(self.minimum)
            self._wake()
