"""Fixtures for the processors: storage in a temp dir, a secret store, validators to drain."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Protocol

import pytest
import redis.asyncio as aioredis

from batch_gateway.clock import Clock
from batch_gateway.events import EventLog
from batch_gateway.processors.component import MAX_DELIVERIES
from batch_gateway.processors.consumer_group import ConsumerGroup
from batch_gateway.processors.settings import ProcessorSettings
from batch_gateway.processors.validation.validator import GROUP, Validator
from batch_gateway.secret_store import SecretStore, load_secrets_key, new_secrets_key
from batch_gateway.storage import FilesystemStorage, ObjectStorage
from tests.processors.batch_inputs import CREATED_AT

# The validators' clock in tests: a minute after the batches were created.
NOW = CREATED_AT + 60


class MakeValidator(Protocol):
    def __call__(
        self,
        name: str = ...,
        *,
        clock: Clock = ...,
        lease_ms: int = ...,
        storage: ObjectStorage | None = ...,
        **settings: Any,
    ) -> Validator: ...


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[FilesystemStorage]:
    filesystem = FilesystemStorage(tmp_path / "objects")
    await filesystem.open()
    yield filesystem
    await filesystem.close()


@pytest.fixture
def secrets(redis_client: aioredis.Redis, event_log: EventLog) -> SecretStore:
    return SecretStore(redis_client, event_log.keys, load_secrets_key(new_secrets_key()))


@pytest.fixture
def validator_group(
    redis_client: aioredis.Redis, event_log: EventLog
) -> Callable[..., ConsumerGroup]:
    """A consumer of the validators' group, wired as `processors/component.py` wires it."""

    def make(name: str, *, lease_ms: int = 30_000) -> ConsumerGroup:
        return ConsumerGroup(
            redis_client,
            event_log.keys.global_stream,
            GROUP,
            name,
            lease_ms=lease_ms,
            max_deliveries=MAX_DELIVERIES,
            dead_letter_stream=f"{event_log.keys.tag}:dead-letter",
        )

    return make


@pytest.fixture
def make_validator(
    event_log: EventLog,
    storage: FilesystemStorage,
    secrets: SecretStore,
    validator_group: Callable[..., ConsumerGroup],
) -> MakeValidator:
    default_storage = storage

    def make(
        name: str = "validator-1",
        *,
        clock: Clock = lambda: NOW,
        lease_ms: int = 30_000,
        storage: ObjectStorage | None = None,
        **settings: Any,
    ) -> Validator:
        return Validator(
            event_log,
            validator_group(name, lease_ms=lease_ms),
            storage or default_storage,
            secrets,
            ProcessorSettings(name=name, **settings),
            clock,
        )

    return make
