"""Batch commands: create and cancel. They decide from the batch aggregate's state, append
events, and wait for the projections to show the change; they never write projection tables."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping

import redis.exceptions

from batch_gateway.clock import Clock
from batch_gateway.errors import Conflict, InvalidRequest, NotFound
from batch_gateway.events import EventLog, Recorded
from batch_gateway.events.aggregate_store import Decision
from batch_gateway.events.batch_aggregate import BatchState, BatchStatus, batch_store
from batch_gateway.events.batch_events import BatchCancelled, BatchCancelRequested, BatchCreated
from batch_gateway.events.file_aggregate import file_store
from batch_gateway.gateway.batch_request import CreateBatchRequest, window_seconds
from batch_gateway.gateway.file_commands import load_active_file
from batch_gateway.gateway.idempotency import IdempotencyKeys, fingerprint
from batch_gateway.ids import is_batch_id, new_batch_id
from batch_gateway.logs import batch_id_var
from batch_gateway.projections.waiter import ProjectionWaiter
from batch_gateway.secret_store import SecretStore

logger = logging.getLogger(__name__)

# Captured headers outlive the completion window by this much, in case a batch ends late.
SECRET_GRACE_SECONDS = 86_400


def no_such_batch(batch_id: str) -> NotFound:
    return NotFound(f"No such Batch object: {batch_id}", param="batch_id")


# What a cancel may stop; any other status but `cancelling` (already stopping) is a 409.
CANCELLABLE: frozenset[BatchStatus] = frozenset({"validating", "in_progress"})


class BatchCommands:
    def __init__(
        self,
        log: EventLog,
        waiter: ProjectionWaiter,
        secrets: SecretStore,
        idempotency: IdempotencyKeys,
        pass_through_headers: list[str],
        clock: Clock,
        projection_wait_seconds: float,
    ) -> None:
        self._batches = batch_store(log)
        self._files = file_store(log)
        self._waiter = waiter
        self._secrets = secrets
        self._idempotency = idempotency
        self._pass_through = [name.lower() for name in pass_through_headers]
        self._clock = clock
        self._projection_wait_seconds = projection_wait_seconds

    async def create(
        self,
        tenant: str,
        request: CreateBatchRequest,
        headers: Mapping[str, str],
        idempotency_key: str | None,
    ) -> tuple[str, BatchState | None]:
        """Create the batch, or find the one this idempotency key created: returns its id, and
        its state as created when this call created it (None when it repeats an earlier one)."""
        input_file, _ = await load_active_file(
            self._files, tenant, request.input_file_id, param="input_file_id"
        )
        if input_file.purpose != "batch":
            raise InvalidRequest(
                f"File {input_file.id} has purpose '{input_file.purpose}'; a batch needs a file "
                "uploaded with purpose 'batch'.",
                param="input_file_id",
                code="invalid_input_file",
            )
        batch_id = new_batch_id()
        if idempotency_key is not None:
            earlier = await self._idempotency.claim(
                tenant, idempotency_key, fingerprint(request), batch_id
            )
            if earlier is not None:
                batch_id_var.set(earlier)
                await self._settle_earlier(earlier)
                return earlier, None
        batch_id_var.set(batch_id)  # the rest of this request's log lines name it
        try:
            return batch_id, await self._create(tenant, batch_id, request, headers)
        except BaseException:
            if idempotency_key is not None:
                await self._idempotency.release(tenant, idempotency_key)
            raise

    async def _create(
        self, tenant: str, batch_id: str, request: CreateBatchRequest, headers: Mapping[str, str]
    ) -> BatchState:
        window = window_seconds(request.completion_window)
        captured = {name: headers[name] for name in self._pass_through if name in headers}
        if captured:
            await self._secrets.put(batch_id, tenant, captured, window + SECRET_GRACE_SECONDS)
        created_at = int(self._clock())
        event = BatchCreated(
            input_file_id=request.input_file_id,
            endpoint=request.endpoint,
            completion_window=request.completion_window,
            created_at=created_at,
            expires_at=created_at + window,
            metadata=request.metadata,
            output_expires_after_seconds=request.output_expires_after_seconds,
            pass_through_headers=sorted(captured),
        )
        try:
            state, recorded = await self._batches.append(batch_id, tenant, None, 0, [event])
        except BaseException:
            await self._secrets.delete(batch_id)
            raise
        logger.info(
            "batch %s created for %s from %s", batch_id, request.endpoint, request.input_file_id
        )
        await self._settle(recorded)
        return state

    async def _settle_earlier(self, batch_id: str) -> None:
        """A repeat of an idempotent create can arrive while the first is still appending:
        wait (bounded) until that batch is in the log, then until it is readable."""
        deadline = time.monotonic() + self._projection_wait_seconds
        while time.monotonic() < deadline:
            records = await self._batches.log.read_aggregate(batch_id)
            if records:
                await self._settle(records[:1])
                return
            await asyncio.sleep(0.02)

    async def cancel(self, tenant: str, batch_id: str) -> None:
        if not is_batch_id(batch_id):
            raise no_such_batch(batch_id)

        async def cancel(state: BatchState | None) -> Decision:
            if state is None or state.tenant != tenant:
                raise no_such_batch(batch_id)
            if state.status == "cancelling":
                return Decision()
            if state.status not in CANCELLABLE:
                raise Conflict(f"Cannot cancel a batch with status '{state.status}'.")
            now = int(self._clock())
            events: list[BatchCancelRequested | BatchCancelled] = [
                BatchCancelRequested(cancelling_at=now)
            ]
            if not state.started:
                # Nobody works on it: nothing to stop, so it is cancelled at once.
                events.append(BatchCancelled(cancelled_at=now))
            return Decision(events, tenant)

        # A processor or the validator that moves the batch on meanwhile: decide again.
        cancelled, recorded = await self._batches.update(batch_id, cancel)
        if not recorded:
            return
        logger.info("batch %s: cancel requested", batch_id)
        if cancelled.state is not None and cancelled.state.terminal:
            await self._forget_secrets(batch_id)
        await self._settle(recorded)

    async def _forget_secrets(self, batch_id: str) -> None:
        try:
            await self._secrets.delete(batch_id)
        except redis.exceptions.RedisError as error:
            # The cancel stands; the sealed headers expire with their TTL anyway.
            logger.warning("could not delete the captured headers of %s: %s", batch_id, error)

    async def _settle(self, recorded: list[Recorded]) -> None:
        await self._waiter.settle(recorded[-1], self._projection_wait_seconds)
