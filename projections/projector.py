"""The projector: tails the global stream and folds every event into PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Protocol

from psycopg import AsyncCursor, OperationalError
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from batch_gateway.events import EventLog, Recorded, StreamId
from batch_gateway.projections.batches import BatchesProjection
from batch_gateway.projections.checkpoint import (
    PROJECTION_NAME,
    advance_checkpoint,
    lock_checkpoint,
    read_checkpoint,
)
from batch_gateway.projections.files import FilesProjection
from batch_gateway.projections.metrics import (
    PROJECTED_EVENTS,
    count_finished,
)
from batch_gateway.redis_client import REDIS_OUTAGE

logger = logging.getLogger(__name__)


class Projection(Protocol):
    async def apply(self, cursor: AsyncCursor[TupleRow], recorded: Recorded) -> None: ...


def all_projections() -> list[Projection]:
    return [FilesProjection(), BatchesProjection()]


class Projector:
    def __init__(
        self,
        log: EventLog,
        pool: AsyncConnectionPool,
        schema: str,
        *,
        batch_size: int = 500,
        projections: Sequence[Projection] | None = None,
    ) -> None:
        self._log = log
        self._pool = pool
        self._schema = schema
        self._batch_size = batch_size
        self._projections = list(projections) if projections is not None else all_projections()

    async def position(self) -> StreamId:
        async with self._pool.connection() as conn:
            return await read_checkpoint(conn, PROJECTION_NAME)

    async def drain(self) -> int:
        """Apply everything in the log now and return how many events were applied (tests,
        rebuilds). Stops when the log has nothing more past the checkpoint."""
        applied = 0
        position = await self.position()
        while records := await self._log.read(position, self._batch_size):
            applied += await self.apply(records)
            position = records[-1].stream_id
        return applied

    async def run(self, stop: asyncio.Event, *, block_ms: int = 1000) -> None:
        """Follow the log until `stop` is set, surviving Redis and PostgreSQL outages."""
        position: StreamId | None = None
        while not stop.is_set():
            try:
                if position is None:
                    position = await self.position()
                records = await self._log.tail(position, block_ms=block_ms, count=self._batch_size)
                if records:
                    await self.apply(records)
                    position = records[-1].stream_id
            except (*REDIS_OUTAGE, OperationalError) as error:
                logger.warning("projector backing off after: %s", error)
                # Re-read the checkpoint after reconnecting: another projector may have moved it.
                position = None
                await _sleep_unless(stop, 1.0)

    async def apply(self, records: Sequence[Recorded]) -> int:
        """Apply `records` (in log order) in one transaction with the checkpoint."""
        if not records:
            return 0  # nothing to write, not even the first checkpoint row
        async with self._pool.connection() as conn, conn.transaction():
            cursor = conn.cursor()
            checkpoint = await lock_checkpoint(cursor, PROJECTION_NAME)
            fresh = [record for record in records if record.stream_id > checkpoint]
            for record in fresh:
                for projection in self._projections:
                    await projection.apply(cursor, record)
            if fresh:
                await advance_checkpoint(cursor, PROJECTION_NAME, self._schema, fresh[-1].stream_id)
        if fresh:
            # Committed: counted once, whatever redelivers them (the checkpoint filters them).
            count_finished(fresh)
            PROJECTED_EVENTS.inc(len(fresh))
        return len(fresh)


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
