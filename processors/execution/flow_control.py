"""Adaptive concurrency per gateway (AIMD), so batch traffic yields to interactive traffic.

The limit starts at the gateway's `max_concurrency` and moves with what the server says:
each success adds 1/limit (about +1 per round of requests), a 429 or 5xx halves it (at most
once per `cooldown` so one burst of errors counts once), and so does a saturated server, read
from its Prometheus metrics (`vllm:num_requests_waiting` above a threshold) when a metrics
URL is configured. It never leaves [min, max]. Requests wait for a slot in FIFO order.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

from prometheus_client.parser import text_string_to_metric_families

WAITING_METRIC = "vllm:num_requests_waiting"


class AdaptiveLimit:
    def __init__(self, maximum: int, minimum: int = 1, cooldown_seconds: float = 1.0) -> None:
        self.maximum = maximum
        self.minimum = max(1, min(minimum, maximum))
        self.limit = float(maximum)
        self.in_flight = 0
        self._cooldown = cooldown_seconds
        self._last_decrease = 0.0
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def __aenter__(self) -> None:
        if self.in_flight >= int(self.limit) or self._waiters:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if not waiter.cancelled() and waiter.done():
                    self._release()  # we were handed a slot we will not use
                elif waiter in self._waiters:
                    self._waiters.remove(waiter)
                raise
        else:
            self.in_flight += 1

    async def __aexit__(self, *exc_info: object) -> None:
        self._release()

    def _release(self) -> None:
        self.in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.in_flight < int(self.limit):
            waiter = self._waiters.popleft()
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


def waiting_requests(metrics_text: str) -> float | None:
    """The sum of `vllm:num_requests_waiting` over every series, or None when absent."""
    total: float | None = None
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name == WAITING_METRIC:
                total = (total or 0.0) + sample.value
    return total
