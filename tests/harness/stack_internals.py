"""Behind the API of a live stack: its event log, secret store and a validator to drain.

Tests use these to see what the API never shows (the log's raw bytes, sealed headers), to put a
batch into a state only processors reach (a claim, a completion), and to run the validating
phase themselves on a stack started without its processor.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

import redis.asyncio as aioredis

from batch_gateway.clock import Clock, system_clock
from batch_gateway.events import EventLog
from batch_gateway.events.aggregate_store import AggregateStore
from batch_gateway.events.batch_aggregate import BatchState, evolve_batch
from batch_gateway.events.batch_events import BATCH_EVENT_CLASSES, BatchEvent
from batch_gateway.events.keys import StreamKeys
from batch_gateway.gateway.settings import ApiServerSettings
from batch_gateway.processors.component import validator_group
from batch_gateway.processors.settings import ProcessorSettings
from batch_gateway.processors.validation.validator import Validator
from batch_gateway.secret_store import SecretStore, load_secrets_key
from batch_gateway.settings import settings_for
from batch_gateway.storage import open_storage


@dataclass(frozen=True)
class StackInternals:
    redis: aioredis.Redis
    log: EventLog
    batches: AggregateStore[BatchState]
    secrets: SecretStore
    validator: Validator

    async def advance(self, batch_id: str, *events: BatchEvent) -> BatchState:
        """Append `events` to the batch as a processor would, checked by its state machine."""
        state, version = await self.batches.load(batch_id)
        assert state is not None, batch_id
        new_state, _ = await self.batches.append(batch_id, state.tenant, state, version, events)
        return new_state

    async def batch_events(self, batch_id: str) -> Sequence[BatchEvent]:
        events = [record.envelope.event for record in await self.log.read_aggregate(batch_id)]
        return [event for event in events if isinstance(event, BATCH_EVENT_CLASSES)]

    async def entries(self, stream: str) -> list[tuple[bytes, dict[bytes, bytes]]]:
        """Every entry of a stream (a job stream, say) as Redis holds it."""
        return cast(list[tuple[bytes, dict[bytes, bytes]]], await self.redis.xrange(stream))

    async def raw_global_stream(self) -> bytes:
        """Every field of every entry of the global stream, as the bytes Redis holds."""
        entries = await self.entries(self.log.keys.global_stream)
        return b"\n".join(
            b"".join(key + b"=" + value for key, value in fields.items()) for _, fields in entries
        )


@contextlib.asynccontextmanager
async def stack_internals(
    settings: ApiServerSettings, clock: Clock = system_clock, **processor_overrides: Any
) -> AsyncIterator[StackInternals]:
    """What lies behind the API of the stack `settings` describe; the validator reads the time
    from `clock` and has the processor's settings with `processor_overrides`."""
    processor = settings_for(
        ProcessorSettings, settings, **({"name": "test-validator"} | processor_overrides)
    )
    client = aioredis.Redis.from_url(processor.redis_url)
    storage = await open_storage(processor.storage)
    try:
        keys = StreamKeys(processor.key_prefix)
        log = EventLog(client, keys, clock)
        secrets = SecretStore(client, keys, load_secrets_key(processor.secrets_key))
        group = validator_group(client, keys, processor)
        yield StackInternals(
            redis=client,
            log=log,
            batches=AggregateStore(log, evolve_batch),
            secrets=secrets,
            validator=Validator(log, group, storage, secrets, processor, clock),
        )
    finally:
        await storage.close()
        await client.aclose()
