"""The validator: claims each new batch and decides `batch.validated` or `batch.failed`.

It is a consumer group ("validators") on the global stream, so a batch is validated if and
only if its `batch.created` is in the log, even when the API server that appended it died a
moment later. Every other event is acknowledged unread. The verdict is appended with the
version the batch was read at: a batch cancelled meanwhile makes the append conflict, and
the validator then finds it no longer `validating` and lets it be. A valid batch is queued on
the job stream of its priority class in the same atomic step as its `batch.validated`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import msgspec

from batch_gateway.clock import Clock
from batch_gateway.events import EventLog
from batch_gateway.events.aggregate_store import Decision
from batch_gateway.events.batch_aggregate import BatchState, batch_store
from batch_gateway.events.batch_events import (
    BatchError,
    BatchExpired,
    BatchFailed,
    BatchValidated,
)
from batch_gateway.events.envelope import UnknownEventType, decode
from batch_gateway.events.file_aggregate import file_store
from batch_gateway.events.log import JobEntry
from batch_gateway.events.types import Event
from batch_gateway.logs import batch_context, request_context
from batch_gateway.processors.consumer_group import OUTAGES, ConsumerGroup, drain
from batch_gateway.processors.execution.priority import job_stream, priority_of
from batch_gateway.processors.metrics import VALIDATIONS, job_phase
from batch_gateway.processors.settings import ProcessorSettings
from batch_gateway.processors.validation.input_file import ValidationResult, validate_input
from batch_gateway.secret_store import SecretStore
from batch_gateway.storage import ObjectNotFound, ObjectStorage, StorageError
from batch_gateway.tracing import span

logger = logging.getLogger(__name__)

GROUP = "validators"
READ_COUNT = 32
# Trouble that passes: the outages every consumer backs off from, and any storage error while
# the file is read. The entry stays pending and is retried.
_PASSING_TROUBLE = (*OUTAGES, StorageError)
_CREATED = b"batch.created"


class Validator:
    def __init__(
        self,
        log: EventLog,
        group: ConsumerGroup,
        storage: ObjectStorage,
        secrets: SecretStore,
        settings: ProcessorSettings,
        clock: Clock,
    ) -> None:
        self._log = log
        self._group = group
        self._storage = storage
        self._secrets = secrets
        self._settings = settings
        self._clock = clock
        self._batches = batch_store(log)
        self._files = file_store(log)

    async def run(self, stop: asyncio.Event, *, block_ms: int = 1000) -> None:
        await self._group.ensure()
        while not stop.is_set():
            try:
                await self.step(block_ms)
            except _PASSING_TROUBLE as error:
                logger.warning("validator backing off after: %s", error)
                await asyncio.sleep(1.0)

    async def drain(self) -> int:
        """Handle every entry waiting now, without blocking; returns how many (tests)."""
        await self._group.ensure()
        return await drain(self.step)

    async def step(self, block_ms: int | None) -> int:
        """One round: reclaim entries of dead validators, read new ones, handle them."""
        entries = await self._group.reclaim(READ_COUNT)
        entries += await self._group.read(READ_COUNT, block_ms)
        for entry_id, fields in entries:
            if fields.get(b"type") == _CREATED:
                try:
                    done = await self._handle_created(entry_id, fields)
                except _PASSING_TROUBLE:
                    raise  # `run` backs off; the entry stays pending
                except Exception:
                    # One bad batch must not stop the validator. Left unacknowledged, the entry
                    # is retried once its lease runs out, and after `max_deliveries` attempts it
                    # is poison: its batch fails and it moves to the dead-letter stream.
                    with batch_context(_batch_of(fields)):
                        logger.exception(
                            "validating the batch of entry %s failed", entry_id.decode()
                        )
                    continue
                if not done:
                    continue  # poison: already moved to the dead-letter stream
            await self._group.ack(entry_id)
        return len(entries)

    async def _handle_created(self, entry_id: bytes, fields: dict[bytes, bytes]) -> bool:
        created = decode(fields[b"event"])
        batch_id = created.aggregate_id
        # The create call's trace goes on here: the verdict is a child of the API call.
        attributes = {"batch_gateway.batch_id": batch_id}
        with (
            batch_context(batch_id),
            request_context(created.request_id),
            span("batch.validate", parent=created.trace_context, attributes=attributes),
        ):
            return await self._handle_batch(entry_id, fields, batch_id)

    async def _handle_batch(
        self, entry_id: bytes, fields: dict[bytes, bytes], batch_id: str
    ) -> bool:
        deliveries = await self._group.deliveries(entry_id)
        if self._group.is_poison(deliveries):
            await self._fail(
                batch_id, "validation_failed", "Validating the batch failed repeatedly."
            )
            await self._group.dead_letter(entry_id, fields, f"delivered {deliveries} times")
            return False
        await self.judge(batch_id)
        return True

    async def judge(self, batch_id: str) -> None:
        await self._while_validating(batch_id, self._verdict)

    async def _while_validating(
        self, batch_id: str, decide: Callable[[BatchState], Awaitable[Decision]]
    ) -> None:
        """Decide on the batch if it is still validating; a concurrent writer that got there
        first (a cancel, another validator) makes the append conflict, and the fresh state
        then shows the batch is no longer ours to decide on."""

        async def while_validating(state: BatchState | None) -> Decision:
            if state is None or state.status != "validating":
                return Decision()  # cancelled, or judged by another validator already
            return await decide(state)

        loaded, recorded = await self._batches.update(batch_id, while_validating)
        if recorded and loaded.state is not None:
            await self._judged(loaded.state, recorded[-1].envelope.event)

    async def _verdict(self, state: BatchState) -> Decision:
        now = int(self._clock())
        if now >= state.expires_at:
            return Decision([BatchExpired(expired_at=now)], state.tenant)
        with job_phase("validate"):
            try:
                result = await self._validate(state)
            except _PASSING_TROUBLE:
                raise
            except Exception as error:
                # Deterministic (a bug, input no check foresaw): retrying it every lease would
                # only make the batch wait minutes for the same failure.
                logger.exception("validating batch %s failed", state.id)
                problem = f"Validating the input file failed ({type(error).__name__})."
                failure = BatchError(code="validation_failed", message=problem)
                result = ValidationResult(0, [], [failure])
        if result.errors:
            return Decision([BatchFailed(failed_at=now, errors=result.errors)], state.tenant)
        priority = priority_of(state.metadata)
        event = BatchValidated(
            validated_at=now,
            total=result.total,
            models=result.models,
            priority=priority,
            slice_size=self._settings.slice_size,
            slice_offsets=result.slice_offsets,
        )
        keys = self._log.keys
        entry = JobEntry(job_stream(keys, priority, keys.partition_of(state.id)), state.id)
        return Decision([event], state.tenant, entry)

    async def _judged(self, state: BatchState, verdict: Event) -> None:
        """What follows a verdict once it is in the log (counted once, whatever the races)."""
        if isinstance(verdict, BatchValidated):
            VALIDATIONS.labels("valid").inc()
            logger.info(
                "batch %s validated: %d requests, queued as %s",
                state.id, verdict.total, verdict.priority,
            )  # fmt: skip
            return
        if isinstance(verdict, BatchFailed):
            VALIDATIONS.labels("invalid").inc()
        await self._secrets.delete(state.id)
        logger.info("batch %s ended while validating: %s", state.id, type(verdict).__name__)

    async def _validate(self, state: BatchState) -> ValidationResult:
        file_state, _ = await self._files.load(state.input_file_id)
        missing = ValidationResult(
            0,
            [],
            [BatchError(code="invalid_input_file", message="The input file no longer exists.")],
        )
        if file_state is None or file_state.lifecycle != "active":
            return missing
        try:
            reader = await self._storage.read(file_state.storage_key)
        except ObjectNotFound:
            return missing
        async with reader:
            return await validate_input(
                reader,
                endpoint=state.endpoint,
                max_requests=self._settings.max_requests_per_batch,
                max_errors=self._settings.max_validation_errors,
                max_line_bytes=self._settings.max_line_bytes,
                allow_multiple_models=self._settings.allow_multiple_models,
                slice_size=self._settings.slice_size,
            )

    async def _fail(self, batch_id: str, code: str, message: str) -> None:
        """Fail a batch that is still validating. One that got past validation (its verdict
        was appended, only the acknowledgement was lost) is not the validator's to fail."""
        error = BatchError(code=code, message=message)

        async def fail(state: BatchState) -> Decision:
            return Decision(
                [BatchFailed(failed_at=int(self._clock()), errors=[error])], state.tenant
            )

        await self._while_validating(batch_id, fail)


def _batch_of(fields: dict[bytes, bytes]) -> str | None:
    """The batch a `batch.created` entry is about, for a log line; None if it is unreadable."""
    try:
        return decode(fields[b"event"]).aggregate_id
    except (KeyError, UnknownEventType, msgspec.DecodeError, msgspec.ValidationError):
        return None
