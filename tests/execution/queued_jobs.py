"""Jobs put on the job streams as the validator would, and processor settings to drain them
with, for the tests of the executor that run without a live stack."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from batch_gateway.events import EventLog
from batch_gateway.events.aggregate_store import AggregateStore
from batch_gateway.events.batch_aggregate import evolve_batch
from batch_gateway.events.batch_events import BatchValidated
from batch_gateway.events.file_aggregate import evolve_file
from batch_gateway.events.log import JobEntry
from batch_gateway.processors.execution.priority import job_stream
from batch_gateway.processors.settings import ProcessorSettings
from batch_gateway.secret_store import new_secrets_key
from batch_gateway.storage import ObjectStorage, StorageSettings, file_object_key
from tests.execution.results import requests_file
from tests.processors.batch_inputs import CREATED_AT, TENANT, create_batch, upload_input

LEASE_MS = 100
# The executors' clock: a minute after the batches were created, well inside their window.
NOW = CREATED_AT + 60


def processor_settings(
    redis_url: str, key_prefix: str, objects: Path, **changes: Any
) -> ProcessorSettings:
    """A processor on the test's Redis prefix, storing under `objects`, with a short lease."""
    values: dict[str, Any] = {"lease_seconds": LEASE_MS / 1000, **changes}
    return ProcessorSettings(
        redis_url=redis_url,
        key_prefix=key_prefix,
        storage=StorageSettings(kind="filesystem", fs_root=str(objects)),
        secrets_key=new_secrets_key(),
        **values,
    )


async def queued_batch(
    log: EventLog,
    storage: ObjectStorage,
    count: int,
    content: bytes | None = None,
    *,
    priority: str = "normal",
    tenant: str = TENANT,
    slice_size: int | None = None,
) -> tuple[str, str]:
    """A validated batch of `count` chat requests queued as `priority` (the lines of `content`
    when given, taken as valid), in slices of `slice_size` (None: one); (batch id, input key)."""
    file_id = await upload_input(log, storage, content or requests_file(count), tenant=tenant)
    batch_id = await create_batch(log, file_id, tenant=tenant)
    batches = AggregateStore(log, evolve_batch)
    state, version = await batches.load(batch_id)
    validated = BatchValidated(
        validated_at=NOW,
        total=count,
        models=["sim-model"],
        priority=priority,
        slice_size=slice_size,
    )
    entry = JobEntry(job_stream(log.keys, priority, log.keys.partition_of(batch_id)), batch_id)
    await batches.append(batch_id, tenant, state, version, [validated], enqueue=entry)
    return batch_id, file_object_key(tenant, file_id)


async def result_lines(
    log: EventLog, storage: ObjectStorage, file_id: str | None
) -> list[dict[str, Any]]:
    """The lines of a result file, decoded; none when the batch has no such file."""
    if file_id is None:
        return []
    state, _ = await AggregateStore(log, evolve_file).load(file_id)
    assert state is not None
    reader = await storage.read(state.storage_key)
    async with reader:
        content = b"".join([chunk async for chunk in reader])
    return [json.loads(line) for line in content.splitlines()]
