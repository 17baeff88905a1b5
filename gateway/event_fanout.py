"""One reader of the global stream per API server, fanning live events out to its SSE streams.

A subscriber that ran its own blocking XREAD would hold a Redis connection for as long as it
is connected: hundreds of them would exhaust the client's pool (100 connections by default)
and starve the API. Instead one task tails the global stream and hands each entry to the
subscriptions of its aggregate (ADR 0013); a subscriber holds no connection while it waits.

Why a subscriber misses nothing: it registers (`subscribe`) *before* it replays its batch's
stream with XRANGE. Every entry the reader hands out before that registration was appended
before it, so the replay, which starts later, contains it; every entry appended after the
registration reaches the subscription when the reader gets to it. Both routes deliver the same
entry ids (the per-batch stream reuses the global ids), so the subscriber drops what it has
already sent by comparing ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator

import redis.exceptions
from prometheus_client import Gauge

from batch_gateway.errors import Unavailable
from batch_gateway.events.envelope import StreamId
from batch_gateway.events.raw_log import RawEntry, RawLog

logger = logging.getLogger(__name__)

SUBSCRIBERS = Gauge(
    "batch_gateway_api_event_subscribers", "Server-Sent Event streams this process serves."
)

_READ_COUNT = 1000
_RETRY_SECONDS = (0.1, 0.5, 1.0, 2.0, 5.0)


class Subscription:
    """Live entries of one aggregate, buffered for one stream until it takes them."""

    def __init__(self, aggregate_id: str, limit: int) -> None:
        self.aggregate_id = aggregate_id
        self._limit = limit
        self._entries: list[RawEntry] = []
        self._overflowed = False
        self._wake = asyncio.Event()
        self.closed = False

    def deliver(self, entry: RawEntry) -> None:
        # A client slower than its events costs at most `limit` entries; once past it the
        # stream re-reads the per-batch stream from where it is, so nothing is lost.
        if not self._overflowed:
            if len(self._entries) < self._limit:
                self._entries.append(entry)
            else:
                self._overflowed = True
                self._entries.clear()
        self._wake.set()

    def close(self) -> None:
        self.closed = True
        self._wake.set()

    async def wait(self, seconds: float) -> bool:
        """Whether entries arrived (or the subscription closed) within `seconds`."""
        if not self._wake.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(seconds):
                    await self._wake.wait()
        return self._wake.is_set()

    def take(self) -> tuple[list[RawEntry], bool]:
        """The entries buffered so far, and whether some were dropped (then re-read them)."""
        entries, overflowed = self._entries, self._overflowed
        self._entries, self._overflowed = [], False
        self._wake.clear()
        return entries, overflowed


class EventFanout:
    def __init__(
        self, log: RawLog, *, block_seconds: float, buffered_events: int, max_subscribers: int
    ) -> None:
        self._log = log
        self._block_ms = max(1, int(block_seconds * 1000))
        self._buffered_events = buffered_events
        self._max_subscribers = max_subscribers
        self._subscriptions: dict[str, set[Subscription]] = {}
        self._count = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False

    @property
    def subscriber_count(self) -> int:
        return self._count

    async def start(self) -> None:
        # One reader per partition of the log (a read waits on one hash tag). Entries older
        # than where each starts are every subscriber's replay business, never the reader's.
        for partition in self._log.partitions:
            cursor = await self._log.last_global_id(partition)
            task = asyncio.create_task(self._follow(cursor, partition), name="event-fanout")
            self._tasks.append(task)

    async def close(self) -> None:
        """Stop reading and end every stream (clients resume elsewhere with Last-Event-ID)."""
        self._closed = True
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for subscriptions in self._subscriptions.values():
            for subscription in subscriptions:
                subscription.close()

    def check_room(self) -> None:
        """Refuse a new stream, before it starts, when this server serves enough of them."""
        if self._closed or self._count >= self._max_subscribers:
            raise Unavailable("This server streams as many batches as it may; retry shortly.")

    @contextlib.contextmanager
    def subscribe(self, aggregate_id: str) -> Iterator[Subscription]:
        subscription = Subscription(aggregate_id, self._buffered_events)
        if self._closed:
            subscription.close()
        self._subscriptions.setdefault(aggregate_id, set()).add(subscription)
        self._count += 1
        SUBSCRIBERS.inc()
        try:
            yield subscription
        finally:
            subscriptions = self._subscriptions[aggregate_id]
            subscriptions.discard(subscription)
            if not subscriptions:
                del self._subscriptions[aggregate_id]
            self._count -= 1
            SUBSCRIBERS.dec()

    async def _follow(self, cursor: StreamId, partition: int) -> None:
        failures = 0
        while True:
            try:
                entries = await self._log.tail_global(
                    cursor, block_ms=self._block_ms, count=_READ_COUNT, partition=partition
                )
            except redis.exceptions.RedisError as error:
                # The cursor stays put, so nothing is skipped once Redis answers again.
                delay = _RETRY_SECONDS[min(failures, len(_RETRY_SECONDS) - 1)]
                failures += 1
                logger.warning("event fan-out cannot read the log (%s); retrying", error)
                await asyncio.sleep(delay)
                continue
            failures = 0
            for entry in entries:
                cursor = entry.stream_id
                if self._subscriptions:
                    self._dispatch(entry)

    def _dispatch(self, entry: RawEntry) -> None:
        try:
            aggregate_id, _ = entry.head()
        except ValueError:
            logger.warning("event fan-out skips unreadable entry %s", entry.stream_id)
            return
        for subscription in self._subscriptions.get(aggregate_id, ()):
            subscription.deliver(entry)


class EventReads:
    """Replay reads of the per-batch streams, a bounded number at once: a crowd of clients
    reconnecting together queues here instead of opening a Redis connection each."""

    page_size = 500

    def __init__(self, log: RawLog, max_concurrent: int) -> None:
        self._log = log
        self._slots = asyncio.Semaphore(max_concurrent)

    async def first(self, batch_id: str) -> RawEntry | None:
        async with self._slots:
            return await self._log.first_of_aggregate(batch_id)

    async def page(self, batch_id: str, after: StreamId | None) -> list[RawEntry]:
        async with self._slots:
            return await self._log.read_aggregate(batch_id, after, self.page_size)

    async def last(self, batch_id: str) -> RawEntry | None:
        async with self._slots:
            return await self._log.last_of_aggregate(batch_id)
