"""Appending the expiry events when something falls due: `file.expired`, `batch.expired`.

Each decision is taken on the aggregate freshly loaded from its own stream (never on the gc's
possibly stale view) and appended with the version it was read at, so a concurrent writer (a
delete from the API, a processor claiming the batch, another gc) makes the append conflict,
and the reloaded state then shows whether there is still anything to do.

A batch no processor has claimed gets the same end a processor would give it on claim (ADR
0011): every request a `batch_expired` line in an error file, no output file. The gc writes and
publishes (`file.uploaded`) that file first, under an id of its own (`expiry_error_file_id`),
so it never touches a file a processor writes and the batch never names a file that is not
there yet; then it appends `batch.expired` naming it, the fence: from then on no processor
claims the batch. If a processor claimed it first, that append conflicts, the batch is the
processor's, and the gc withdraws its file (`file.deleted`; also done when such a batch ends,
should the gc have died in between). A gc that died between the file and the fence finds the
file published on its next attempt and uses it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import msgspec

from batch_gateway.clock import Clock
from batch_gateway.events import (
    EventLog,
    FileDeleted,
    FileExpired,
    VersionConflict,
)
from batch_gateway.events.aggregate_store import AggregateStore, Contended, Decision, Loaded
from batch_gateway.events.batch_aggregate import BatchState, batch_store
from batch_gateway.events.batch_events import BatchExpired, RequestCounts
from batch_gateway.events.envelope import Recorded
from batch_gateway.events.file_aggregate import FileState, file_store
from batch_gateway.gc.schedule import UNCLAIMED_EXPIRABLE
from batch_gateway.results.requests import requests_of
from batch_gateway.results.result_files import publish_result_file
from batch_gateway.results.result_lines import encode_line
from batch_gateway.results.stop_lines import stop_line
from batch_gateway.storage import ObjectNotFound, ObjectStorage, file_object_key

logger = logging.getLogger(__name__)

State = TypeVar("State")

_WRITE_CHUNK_BYTES = 64 * 1024


def expiry_error_file_id(batch_id: str) -> str:
    """The id of the error file the gc makes for a batch it expires (never a processor's)."""
    return "file-" + hashlib.sha256(f"{batch_id}:gc-expired".encode()).hexdigest()[:24]


class ErrorFile(msgspec.Struct, frozen=True):
    id: str
    key: str
    size: int
    lines: int


class Expirer:
    def __init__(
        self,
        log: EventLog,
        storage: ObjectStorage,
        clock: Clock,
        *,
        output_expiry_seconds: int,
        dry_run: bool,
    ) -> None:
        self._log = log
        self._files = file_store(log)
        self._batches = batch_store(log)
        self._storage = storage
        self._clock = clock
        self._output_expiry_seconds = output_expiry_seconds
        self._dry_run = dry_run

    async def expire_file(self, file_id: str) -> bool:
        """Append `file.expired` if the file is still active and due; whether it was (its bytes
        go when the gc reads the event back, like those of any file that ended)."""
        would = False

        async def expire(state: FileState | None) -> Decision:
            nonlocal would
            now = self._clock()
            if state is None or state.lifecycle != "active" or state.expires_at is None:
                return Decision()
            if now < state.expires_at:
                return Decision()  # never early, whatever the schedule said
            if self._dry_run:
                logger.info(
                    "dry run: would expire %s and delete its %d bytes at %s",
                    file_id, state.bytes, state.storage_key,
                )  # fmt: skip
                would = True
                return Decision()
            return Decision([FileExpired(expired_at=int(now))], state.tenant)

        loaded, recorded = await self._update(self._files, file_id, expire)
        if recorded and loaded.state is not None:
            logger.info("expired %s (due at %s)", file_id, loaded.state.expires_at)
        return bool(recorded) or would

    async def expire_batch(self, batch_id: str) -> bool:
        """Append `batch.expired` if the batch is past its window and still unclaimed."""
        published: ErrorFile | None = None
        would = False

        async def expire(state: BatchState | None) -> Decision:
            nonlocal published, would
            now = self._clock()
            if state is None or state.claims or state.status not in UNCLAIMED_EXPIRABLE:
                return Decision()
            if now < state.expires_at:
                return Decision()
            if self._dry_run:
                logger.info("dry run: would expire unclaimed batch %s", batch_id)
                would = True
                return Decision()
            expired = BatchExpired(expired_at=int(now))
            if state.status == "in_progress":
                published = await self._error_file(state)
            if published is not None:
                expired = BatchExpired(
                    expired_at=int(now),
                    request_counts=RequestCounts(
                        total=state.request_counts.total, failed=published.lines
                    ),
                    usage=state.usage,
                    error_file_id=published.id,
                )
            return Decision([expired], state.tenant)

        loaded, recorded = await self._update(self._batches, batch_id, expire)
        if recorded and loaded.state is not None:
            logger.info("expired unclaimed batch %s (due at %d)", batch_id, loaded.state.expires_at)
            return True
        if published is not None:
            await self.withdraw_error_file(batch_id)  # the batch went to a processor
        return would

    async def withdraw_error_file(self, batch_id: str) -> bool:
        """Delete the gc's error file of a batch that ended otherwise (a processor claimed it
        between the file's publication and the gc's `batch.expired`); whether there was one."""
        file_id = expiry_error_file_id(batch_id)
        would = False

        async def withdraw(state: FileState | None) -> Decision:
            nonlocal would
            if state is None or state.lifecycle != "active":
                return Decision()
            if self._dry_run:
                logger.info(
                    "dry run: would withdraw %s, the unused error file of %s", file_id, batch_id
                )
                would = True
                return Decision()
            return Decision([FileDeleted(deleted_at=int(self._clock()))], state.tenant)

        _, recorded = await self._update(self._files, file_id, withdraw)
        if recorded:
            logger.info("withdrew %s: %s did not end by the gc's expiry", file_id, batch_id)
        return bool(recorded) or would

    @staticmethod
    async def _update(
        store: AggregateStore[State],
        aggregate_id: str,
        decide: Callable[[State | None], Awaitable[Decision]],
    ) -> tuple[Loaded[State], list[Recorded]]:
        """`store.update`, except that an aggregate that keeps changing is left for the next
        sweep rather than failing this one."""
        try:
            return await store.update(aggregate_id, decide)
        except Contended:
            logger.info("%s keeps changing; the next sweep looks at it again", aggregate_id)
            return Loaded(None, 0), []

    async def _error_file(self, state: BatchState) -> ErrorFile | None:
        """The gc's error file for the batch, published already (by an attempt that died before
        its `batch.expired`) or now: a `batch_expired` line for every request."""
        file_id = expiry_error_file_id(state.id)
        existing, _ = await self._files.load(file_id)
        if existing is not None:
            if existing.lifecycle != "active":
                return None
            return ErrorFile(file_id, existing.storage_key, existing.bytes, existing.line_count)
        input_file, _ = await self._files.load(state.input_file_id)
        if input_file is None or input_file.lifecycle != "active":
            return None
        try:
            published = await publish_result_file(
                self._log,
                self._storage,
                state,
                file_id=file_id,
                kind="errors",
                lines=_expired_lines(self._storage, input_file.storage_key),
                created_at=int(self._clock()),
                default_expiry=self._output_expiry_seconds,
            )
        except ObjectNotFound:
            return None  # the input file went meanwhile
        except VersionConflict:
            return await self._error_file(state)  # another gc published it just now: use that
        if published is None:
            return None
        size, lines = published
        return ErrorFile(file_id, file_object_key(state.tenant, file_id), size, lines)


async def _expired_lines(storage: ObjectStorage, input_key: str) -> AsyncIterator[bytes]:
    buffer: list[bytes] = []
    size = 0
    async for request in requests_of(storage, input_key, skip=()):
        line = encode_line(stop_line(request.custom_id, "expired"))
        buffer.append(line)
        size += len(line)
        if size >= _WRITE_CHUNK_BYTES:
            yield b"".join(buffer)
            buffer, size = [], 0
    if buffer:
        yield b"".join(buffer)
