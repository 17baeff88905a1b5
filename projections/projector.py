"""The projector: tails the global stream and folds every event into PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Protocol

from psycopg import AsyncConnection, AsyncCursor, InterfaceError, OperationalError
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from batch_gateway.events import EventLog, Recorded, StreamId, Unreadable
from batch_gateway.events.log_readers import LogReaders
from batch_gateway.projections.batches import BatchesProjection
from batch_gateway.projections.checkpoint import (
    advance_checkpoint,
    lock_checkpoint,
    projection_name,
    read_checkpoint,
)
from batch_gateway.projections.dead_letters import DeadLetter, report, set_aside
from batch_gateway.projections.files import FilesProjection
from batch_gateway.projections.metrics import (
    PROJECTED_EVENTS,
    count_finished,
)
from batch_gateway.redis_client import REDIS_OUTAGE

logger = logging.getLogger(__name__)

# PostgreSQL going away (or a pool with no connection to give): wait and retry, never a reason
# to set an event aside. Anything else raised while applying an event is about that event.
POSTGRES_OUTAGE = (OperationalError, InterfaceError)
# How often a following projector tells the gc how far it has got (it trims behind that).
REGISTER_EVERY = 1.0


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
        readers: LogReaders | None = None,
        partition: int = 0,
    ) -> None:
        self._log = log
        # Each partition of the log is projected on its own, with its own checkpoint row.
        self._partition = partition
        self._name = projection_name(partition)
        # Where the projector registers its position, so the log is not trimmed ahead of it
        # (a rebuild does not register: it reads the archive wherever it is behind).
        self._readers = readers
        self._registered_at = 0.0
        self._pool = pool
        self._schema = schema
        self._batch_size = batch_size
        self._projections = list(projections) if projections is not None else all_projections()

    async def position(self) -> StreamId:
        async with self._pool.connection() as conn:
            return await read_checkpoint(conn, self._name)

    async def drain(self) -> int:
        """Apply everything in the log now and return how many events were applied (tests,
        rebuilds). Stops when the log has nothing more past the checkpoint."""
        applied = 0
        position = await self.position()
        while records := await self._log.read_entries(position, self._batch_size, self._partition):
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
                records = await self._log.tail_entries(
                    position, block_ms=block_ms, count=self._batch_size, partition=self._partition
                )
                if records:
                    await self.apply(records)
                    position = records[-1].stream_id
                await self._register(position)
            except (*REDIS_OUTAGE, *POSTGRES_OUTAGE) as error:
                logger.warning("projector backing off after: %s", error)
                # Re-read the checkpoint after reconnecting: another projector may have moved it.
                position = None
                await _sleep_unless(stop, 1.0)

    async def _register(self, position: StreamId) -> None:
        if self._readers is None or time.monotonic() < self._registered_at + REGISTER_EVERY:
            return
        await self._readers.register(f"projector:{self._schema}", position, self._partition)
        self._registered_at = time.monotonic()

    async def apply(self, records: Sequence[Recorded | Unreadable]) -> int:
        """Apply `records` (in log order) in one transaction with the checkpoint; returns how
        many were new to it. An entry the projections cannot apply is set aside as a dead
        letter in that transaction instead (projections/dead_letters.py)."""
        if not records:
            return 0  # nothing to write, not even the first checkpoint row
        try:
            return await self._apply(records, isolated=False)
        except POSTGRES_OUTAGE:
            raise
        except Exception:
            # Rolled back whole: apply again, each entry in a savepoint of its own, so that
            # only the one that fails is set aside. The fast path above needs no savepoints.
            return await self._apply(records, isolated=True)

    async def _apply(self, records: Sequence[Recorded | Unreadable], *, isolated: bool) -> int:
        dead: list[DeadLetter] = []
        async with self._pool.connection() as conn, conn.transaction():
            cursor = conn.cursor()
            checkpoint = await lock_checkpoint(cursor, self._name)
            fresh = [record for record in records if record.stream_id > checkpoint]
            for record in fresh:
                if isinstance(record, Unreadable):
                    dead.append(DeadLetter(record, record.error))
                elif isolated:
                    error = await self._apply_in_savepoint(conn, cursor, record)
                    if error is not None:
                        dead.append(DeadLetter(record, error))
                else:
                    await self._apply_one(cursor, record)
            for letter in dead:
                await set_aside(cursor, letter)
            if fresh:
                await advance_checkpoint(cursor, self._name, self._schema, fresh[-1].stream_id)
        # Committed: counted once, whatever redelivers them (the checkpoint filters them).
        report(dead)
        applied = [
            record
            for record in fresh
            if isinstance(record, Recorded) and all(letter.entry is not record for letter in dead)
        ]
        count_finished(applied)
        PROJECTED_EVENTS.inc(len(applied))
        return len(fresh)

    async def _apply_one(self, cursor: AsyncCursor[TupleRow], record: Recorded) -> None:
        for projection in self._projections:
            await projection.apply(cursor, record)

    async def _apply_in_savepoint(
        self, conn: AsyncConnection[TupleRow], cursor: AsyncCursor[TupleRow], record: Recorded
    ) -> str | None:
        """Apply one event in a savepoint; the error that made it roll back, if any."""
        try:
            async with conn.transaction():
                await self._apply_one(cursor, record)
        except POSTGRES_OUTAGE:
            raise
        except Exception as error:  # recorded with the dead letter
            return f"{type(error).__name__}: {error}"
        return None


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
