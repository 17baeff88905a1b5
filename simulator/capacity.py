"""Concurrent slots: at most `capacity` requests are served at once, the rest wait in arrival
order, as in a real inference server's scheduler queue."""

from __future__ import annotations

import asyncio


class Slots:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.running = 0
        # The most requests served at once since the start (or the last reset of the stats).
        self.peak = 0
        # asyncio.Semaphore wakes its waiters in FIFO order, and `acquire` does not yield when a
        # slot is free: a request that need not wait is never seen waiting by a metrics scrape.
        self._semaphore = asyncio.Semaphore(capacity)

    async def acquire(self) -> None:
        await self._semaphore.acquire()
        self.running += 1
        self.peak = max(self.peak, self.running)

    def release(self) -> None:
        self.running -= 1
        self._semaphore.release()

    @property
    def usage(self) -> float:
        """The share of slots in use: the simulator's stand-in for KV-cache usage."""
        return self.running / self.capacity
