"""Fixtures of the gc tests: storage on both plug-ins, a world to collect, gc instances.

Every test runs on the filesystem plug-in (in tmp_path) and on S3 (moto, a bucket of its
own); time is a `ManualClock` the test moves, so nothing ever sleeps through an expiry.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
import redis.asyncio as aioredis

from batch_gateway.events import EventLog
from batch_gateway.events.archive import EventArchive
from batch_gateway.events.keys import StreamKeys
from batch_gateway.gc.collector import GarbageCollector
from batch_gateway.gc.settings import GcSettings
from batch_gateway.secret_store import new_secrets_key
from batch_gateway.storage import ObjectStorage, StorageSettings, open_storage
from tests.gc.world import ManualClock, World
from tests.harness.s3_server import S3Endpoint

MakeGc = Callable[..., GarbageCollector]


@pytest.fixture(params=["filesystem", "s3"])
def storage_settings(
    request: pytest.FixtureRequest, tmp_path: Path, s3_endpoint: S3Endpoint
) -> StorageSettings:
    if request.param == "filesystem":
        return StorageSettings(kind="filesystem", fs_root=str(tmp_path / "objects"))
    return StorageSettings(
        kind="s3",
        s3_endpoint=s3_endpoint.url,
        s3_bucket=f"test-{uuid.uuid4().hex[:16]}",
        s3_access_key=s3_endpoint.access_key,
        s3_secret_key=s3_endpoint.secret_key,
        s3_region=s3_endpoint.region,
    )


@pytest.fixture
async def storage(storage_settings: StorageSettings) -> AsyncIterator[ObjectStorage]:
    opened = await open_storage(storage_settings)
    yield opened
    await opened.close()


@pytest.fixture
def gc_settings(redis_url: str, key_prefix: str, storage_settings: StorageSettings) -> GcSettings:
    return GcSettings(
        redis_url=redis_url,
        key_prefix=key_prefix,
        storage=storage_settings,
        secrets_key=new_secrets_key(),
    )


@pytest.fixture
def start() -> int:
    """Now, in whole seconds: when the world's files and batches are made."""
    return int(time.time())


@pytest.fixture
def clock(start: int) -> ManualClock:
    return ManualClock(start)


@pytest.fixture
def world(
    redis_client: aioredis.Redis, key_prefix: str, storage: ObjectStorage, start: int
) -> World:
    # With the archive, as every component's log has it: the gc may trim what it archived.
    log = EventLog(
        redis_client, StreamKeys(key_prefix), lambda: float(start), EventArchive(storage)
    )
    return World(log, storage, start)


@pytest.fixture
def make_gc(
    redis_client: aioredis.Redis,
    key_prefix: str,
    storage: ObjectStorage,
    gc_settings: GcSettings,
    clock: ManualClock,
) -> MakeGc:
    """A new gc instance (as a fresh process would be), with some settings changed; `on`
    replaces its storage and `log` its event log (to inject failures and races)."""
    numbers = itertools.count(1)

    def make(
        *, on: ObjectStorage | None = None, log: EventLog | None = None, **changes: Any
    ) -> GarbageCollector:
        return GarbageCollector(
            redis_client,
            StreamKeys(key_prefix),
            on or storage,
            msgspec.structs.replace(gc_settings, **changes),
            clock,
            instance=f"gc-{next(numbers)}",
            log=log,
        )

    return make
