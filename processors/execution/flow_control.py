"""A gateway's concurrency for batch traffic: AIMD, an admission gate, and fair slots.

The limit starts at the gateway's `max_concurrency` and moves with what the server says: each
success adds 1/limit (about +1 per round of requests), a 429, 5xx or connection error halves
it (at most once per `cooldown` so one burst of errors counts once). It never leaves
[min, max] (ADR 0012).

On top, the admission gate (admission.py) sets a cap from the server's metrics: 0 (closed)
while interactive traffic needs the whole server, else what the server has room for. Nothing
new is sent past the cap; requests in flight finish. A cap that rises does so gradually: from
the minimum when it was closed, doubling at most at each reading, so the waiting requests are
let in step by step, never all at once. After an overload (above) the limit also comes back
by slow start, +1 per success, up to where it was.

Which waiting request gets a free slot is weighted fair queueing (fair_share.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

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
        # The admission gate's cap; unlimited until a gate sets one.
        self.cap = float("inf")
        self._cooldown = cooldown_seconds
        self._last_decrease = 0.0
        self._queue = FairQueue(weights)

    @property
    def waiting(self) -> int:
        return len(self._queue)

    @property
    def closed(self) -> bool:
        return self.cap < 1.0

    @property
    def room(self) -> int:
        """Requests that may be in flight now."""
        return int(min(self.limit, self.cap))

    async def acquire(self, flow: Flow) -> None:
        if self.in_flight < self.room and not self._queue:
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
        while self.in_flight < self.room:
            waiter = self._queue.pop()
            if waiter is None:
                return
            if not waiter.done():
                self.in_flight += 1
                waiter.set_result(None)

    def on_success(self) -> None:
        self.limit = min(float(self.maximum), self.limit + 1.0 / self.limit)
        self._wake()

    def on_overload(self) -> None:
        now = time.monotonic()
        if now - self._last_decrease < self._cooldown:
            return
        self._last_decrease = now
        self.limit = max(float(self.minimum), self.limit / 2)

    def admit(self, target: float) -> None:
        """The admission gate's reading: at most `target` in flight (0 closes). Lower takes
        effect at once; higher is reached by doubling from the minimum at each reading."""
        if target <= self.cap:
            self.cap = max(0.0, target)
        else:
            self.cap = min(target, max(float(self.minimum), self.cap * 2))
        self._wake()
