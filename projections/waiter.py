"""Read-your-writes: wait until the projections have applied a given log position.

A command appends its event and, before answering, waits here for the projector to pass
that event's stream id, so the client's next GET or list sees its own change. The
projector NOTIFYs each checkpoint it commits; one LISTEN connection per process turns those
into wake-ups. Notifications can be missed (the listener reconnecting, say), so a waiter
also re-reads the checkpoint every `poll_seconds`: the notification is the fast path, never
the only path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import psycopg
from psycopg_pool import AsyncConnectionPool

from batch_gateway.errors import Unavailable
from batch_gateway.events import Recorded, StreamId
from batch_gateway.events.envelope import ORIGIN
from batch_gateway.events.keys import StreamKeys
from batch_gateway.projections.checkpoint import notify_channel, projection_name, read_checkpoint
from batch_gateway.projections.database import connect

logger = logging.getLogger(__name__)


class ProjectionWaiter:
    def __init__(
        self,
        url: str,
        schema: str,
        pool: AsyncConnectionPool,
        *,
        poll_seconds: float = 0.2,
        keys: StreamKeys | None = None,
    ) -> None:
        self._url = url
        self._schema = schema
        self._pool = pool
        self._poll_seconds = poll_seconds
        self._keys = keys or StreamKeys()
        # Each partition of the log has its own checkpoint (ADR 0029).
        self._positions = dict.fromkeys(self._keys.every_partition, ORIGIN)
        self._advanced = asyncio.Condition()
        self._listener: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._listener = asyncio.create_task(self._listen(), name="projection-waiter-listen")

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener

    async def wait_for(self, target: StreamId, within: float, partition: int = 0) -> bool:
        """True once the projections have applied `target` of `partition`; False if `within`
        seconds pass first."""
        deadline = time.monotonic() + within
        while self._positions[partition] < target:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            async with self._advanced:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._advanced.wait_for(lambda: self._positions[partition] >= target),
                        min(remaining, self._poll_seconds),
                    )
            if self._positions[partition] < target:
                await self._refresh(partition)
        return True

    async def settle(self, recorded: Recorded, within: float) -> None:
        """Read-your-writes for a command: return once the event `recorded` is readable, or
        after `within` seconds with a warning (the change is durable in the log either way;
        see ADR 0003)."""
        target = recorded.stream_id
        partition = self._keys.partition_of(recorded.envelope.aggregate_id)
        if not await self.wait_for(target, within, partition):
            logger.warning(
                "projections did not reach %s within %.1fs; answering anyway", target, within
            )

    async def _refresh(self, partition: int) -> None:
        try:
            async with self._pool.connection() as conn:
                position = await read_checkpoint(conn, projection_name(partition))
                await self._advance(partition, position)
        except psycopg.OperationalError as error:
            logger.warning("cannot read the projection checkpoint: %s", error)

    async def _advance(self, partition: int, position: StreamId) -> None:
        if position > self._positions.get(partition, position):
            async with self._advanced:
                self._positions[partition] = position
                self._advanced.notify_all()

    async def _listen(self) -> None:
        channel = notify_channel(self._schema)
        while True:
            try:
                async with await connect(self._url, self._schema) as conn:
                    await conn.execute(f'LISTEN "{channel}"')
                    for partition in self._keys.every_partition:
                        await self._refresh(partition)
                    async for notification in conn.notifies():
                        number, _, position = notification.payload.partition(" ")
                        await self._advance(int(number), StreamId.parse(position))
            except (psycopg.OperationalError, Unavailable) as error:
                # `connect` reports an unreachable server as Unavailable: keep retrying, the
                # waits poll meanwhile.
                logger.warning("projection listener reconnecting after: %s", error)
                await asyncio.sleep(1.0)
