"""The validator in drain mode: each new batch judged once, from its input file, against Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
import redis.asyncio as aioredis

from batch_gateway.events import Event, EventLog
from batch_gateway.events.batch_events import (
    BatchCancelled,
    BatchCancelRequested,
    BatchCreated,
    BatchError,
    BatchExpired,
    BatchFailed,
    BatchValidated,
)
from batch_gateway.events.types import FileDeleted
from batch_gateway.processors.component import MAX_DELIVERIES
from batch_gateway.processors.consumer_group import ConsumerGroup, Entry
from batch_gateway.processors.execution.priority import PRIORITY_CLASSES, job_stream
from batch_gateway.processors.validation.validator import GROUP
from batch_gateway.secret_store import SecretStore
from batch_gateway.storage import (
    FilesystemStorage,
    ObjectReader,
    StorageUnavailable,
    file_object_key,
)
from tests.processors.batch_inputs import (
    EXPIRES_AT,
    TENANT,
    create_batch,
    jsonl,
    request_line,
    upload_input,
)
from tests.processors.conftest import NOW, MakeValidator

HEADERS = {"authorization": "Bearer sk-downstream"}
VALID = jsonl([request_line("a", model="m2"), request_line("b"), request_line("c", model="m2")])


async def _events(log: EventLog, aggregate_id: str) -> list[Event]:
    return [record.envelope.event for record in await log.read_aggregate(aggregate_id)]


async def _verdicts(log: EventLog, batch_id: str) -> list[Event]:
    """What happened to the batch after its creation."""
    events = await _events(log, batch_id)
    assert isinstance(events[0], BatchCreated)
    return events[1:]


async def _jobs(client: aioredis.Redis, log: EventLog) -> dict[str, list[bytes]]:
    """The batch ids queued on each priority class's job stream."""
    queued: dict[str, list[bytes]] = {}
    for priority in PRIORITY_CLASSES:
        entries = cast(list[Entry], await client.xrange(job_stream(log.keys, priority)))
        queued[priority] = [fields[b"batch_id"] for _, fields in entries]
    return queued


async def _pending(client: aioredis.Redis, log: EventLog) -> int:
    summary = await client.xpending(log.keys.global_stream, GROUP)
    return int(summary["pending"])


async def _dead_letters(client: aioredis.Redis, log: EventLog) -> list[dict[bytes, bytes]]:
    entries = cast(list[Entry], await client.xrange(f"{log.keys.tag}:dead-letter"))
    return [fields for _, fields in entries]


async def _secret_keys(client: aioredis.Redis, log: EventLog) -> list[bytes]:
    return [key async for key in client.scan_iter(match=f"{log.keys.tag}:secrets:*")]


async def _new_batch(
    log: EventLog,
    storage: FilesystemStorage,
    secrets: SecretStore,
    data: bytes = VALID,
    **options: Any,
) -> str:
    batch_id = await create_batch(log, await upload_input(log, storage, data), **options)
    await secrets.put(batch_id, TENANT, HEADERS, ttl_seconds=3600)
    return batch_id


@pytest.mark.parametrize(
    ("metadata", "priority"),
    [
        (None, "normal"),
        ({"priority": "high"}, "high"),
        ({"priority": "low", "team": "search"}, "low"),
        ({"priority": " HIGH "}, "high"),
        ({"priority": "urgent"}, "normal"),
        ({"team": "search"}, "normal"),
    ],
)
async def test_a_valid_file_is_validated_and_queued_once_on_its_priority_class(
    event_log: EventLog,
    storage: FilesystemStorage,
    secrets: SecretStore,
    redis_client: aioredis.Redis,
    make_validator: MakeValidator,
    metadata: dict[str, str] | None,
    priority: str,
) -> None:
    batch_id = await _new_batch(event_log, storage, secrets, metadata=metadata)

    handled = await make_validator().drain()

    # The file's upload and the verdict itself are acknowledged unread.
    assert handled == 3
    assert await _verdicts(event_log, batch_id) == [
        BatchValidated(
            validated_at=NOW, total=3, models=["m1", "m2"], priority=priority, slice_size=500
        )
    ]
    expected_jobs: dict[str, list[bytes]] = {p: [] for p in PRIORITY_CLASSES}
    expected_jobs[priority] = [batch_id.encode()]
    assert await _jobs(redis_client, event_log) == expected_jobs
    assert await _pending(redis_client, event_log) == 0
    # The processors still need the pass-through headers to dispatch the job.
    assert await secrets.get(batch_id, TENANT) == HEADERS
    # Drained: a second pass finds nothing to do and queues nothing twice.
    assert await make_validator().drain() == 0
    assert await make_validator("validator-2").drain() == 0
    assert await _jobs(redis_client, event_log) == expected_jobs


async def test_an_invalid_file_fails_the_batch_with_line_errors_and_drops_its_headers(
    event_log: EventLog,
    storage: FilesystemStorage,
    secrets: SecretStore,
    redis_client: aioredis.Redis,
    make_validator: MakeValidator,
) -> None:
    data = jsonl(
        [
            request_line("a"),
            "not json",
            request_line("b", url="/v1/embeddings"),
            request_line("a"),
            request_line("c", stream=True),
        ]
    )
    batch_id = await _new_batch(event_log, storage, secrets, data)

    await make_validator().drain()

    [failed] = await _verdicts(event_log, batch_id)
    assert isinstance(failed, BatchFailed)
    assert failed.failed_at == NOW
    assert [(e.code, e.line, e.param) for e in failed.errors] == [
        ("invalid_json_line", 2, None),
        ("invalid_url", 3, "url"),
        ("duplicate_custom_id", 4, "custom_id"),
        ("streaming_unsupported", 5, "body.stream"),
    ]
    assert await secrets.get(batch_id, TENANT) == {}
    assert await _secret_keys(redis_client, event_log) == []
    assert await _jobs(redis_client, event_log) == {p: [] for p in PRIORITY_CLASSES}
    assert await _pending(redis_client, event_log) == 0


async def test_at_most_max_validation_errors_are_reported(
    event_log: EventLog,
    storage: FilesystemStorage,
    secrets: SecretStore,
    make_validator: MakeValidator,
) -> None:
    batch_id = await _new_batch(event_log, storage, secrets, jsonl(["{"] * 10))

    await make_validator(max_validation_errors=3).drain()

    [failed] = await _verdicts(event_log, batch_id)
    assert isinstance(failed, BatchFailed)
    assert [(e.code, e.line) for e in failed.errors] == [
        ("invalid_json_line", n) for n in (1, 2, 3)
    ]


async def test_a_batch_cancelled_before_validation_is_left_alone(
    event_log: EventLog,
    storage: FilesystemStorage,
    secrets: SecretStore,
    redis_client: aioredis.Redis,
    make_validator: MakeValidator,
) -> None:
    batch_id = await _new_batch(event_log, storage, secrets)
    cancel: list[Event] = [
        BatchCancelRequested(cancelling_at=NOW),
        BatchCancelled(cancelled_at=NOW),
    ]
    await event_log.append(batch_id, TENANT, 1, cancel)

    assert await make_validator().drain() == 4

    assert await _verdicts(event_log, batch_id) == cancel
    assert await _jobs(redis_client, event_log) == {p: [] for p in PRIORITY_CLASSES}
    assert await _pending(redis_client, event_log) == 0


async def test_a_batch_cancelled_while_its_file_is_read_is_not_queued(
    event_log: EventLog,
    storage: FilesystemStorage,
    secrets: SecretStore,
    redis_client: aioredis.Redis,
    make_validator: MakeValidator,
    tmp_path: Path,
) -> None:
    batch_id = await _new_batch(event_log, storage, secrets)
    cancel: list[Event] = [
        BatchCancelRequested(cancelling_at=NOW),
        BatchCancelled(cancelled_at=NOW),
    ]

    class CancelledMidRead(FilesystemStorage):
        async def read(self, key: str, offset: int = 0) -> ObjectReader:
            await event_log.append(batch_id, TENANT, 1, cancel)  # the API wins the race
            return await super().read(key, offset)

    racing = CancelledMidRead(tmp_path / "objects")
    await racing.open()
    await make_validator(storage=racing).drain()

    assert await _verdicts(event_log, batch_id) == cancel
    assert await _jobs(redis_client, event_log) == {p: [] for p in PRIORITY_CLASSES}
    assert await _pending(redis_client, event_log) == 0


@pytest.mark.parametrize("now", [EXPIRES_AT, EXPIRES_AT + 3600])
async def test_a_batch_past_its_expiry_is_expired_not_validated(
    event_log: EventLog,
    storage: FilesystemStorage,
    secrets: SecretStore,
    redis_client: aioredis.Redis,
    make_validator: MakeValidator,
    now: int,
) -> None:
    batch_id = await _new_batch(event_log, storage, secrets)

    await make_validator(clock=lambda: now).drain()

    assert await _verdicts(event_log, batch_id) == [BatchExpired(expired_at=now)]
    assert await _secret_keys(redis_client, event_log) == []
    assert await _jobs(redis_client, event_log) == {p: [] for p in PRIORITY_CLASSES}


async def test_a_batch_just_before_its_expiry_is_validated(
    event_log: EventLog,
    storage: FilesystemStorage,
    secrets: SecretStore,
    make_validator: MakeValidator,
) -> None:
    batch_id = await _new_batch(event_log, storage, secrets)

    await make_validator(clock=lambda: EXPIRES_AT - 1).drain()

    [verdict] = await _verdicts(event_log, batch_id)
    assert isinstance(verdict, BatchValidated)


@pytest.mark.parametrize("how", ["file deleted", "object gone"])
async def test_an_input_file_deleted_before_validation_fails_the_batch(
    event_log: EventLog,
    storage: FilesystemStorage,
    secrets: SecretStore,
    redis_client: aioredis.Redis,
    make_validator: MakeValidator,
    how: str,
) -> None:
    file_id = await upload_input(event_log, storage, VALID)
    batch_id = await create_batch(event_log, file_id)
    if how == "file deleted":
        await event_log.append(file_id, TENANT, 1, [FileDeleted(deleted_at=NOW)])
    else:
        assert await storage.delete(file_object_key(TENANT, file_id))

    await make_validator().drain()

    assert await _verdicts(event_log, batch_id) == [
        BatchFailed(
            failed_at=NOW,
            errors=[
                BatchError(code="invalid_input_file", message="The input file no longer exists.")
            ],
        )
    ]
    assert await _jobs(redis_client, event_log) == {p: [] for p in PRIORITY_CLASSES}


async def test_two_validators_draining_together_judge_each_batch_exactly_once(
    event_log: EventLog,
    storage: FilesystemStorage,
    secrets: SecretStore,
    redis_client: aioredis.Redis,
    make_validator: MakeValidator,
) -> None:
    good = [await _new_batch(event_log, storage, secrets) for _ in range(30)]
    bad = [await _new_batch(event_log, storage, secrets, b"{\n") for _ in range(10)]
    first, second = make_validator("validator-1"), make_validator("validator-2")

    handled = await asyncio.gather(first.drain(), second.drain())

    assert sum(handled) == 120  # each upload, creation and verdict went to one of them
    for batch_id in good:
        [verdict] = await _verdicts(event_log, batch_id)
        assert isinstance(verdict, BatchValidated)
    for batch_id in bad:
        [verdict] = await _verdicts(event_log, batch_id)
        assert isinstance(verdict, BatchFailed)
    queued = (await _jobs(redis_client, event_log))["normal"]
    assert sorted(queued) == sorted(batch_id.encode() for batch_id in good)
    assert await _pending(redis_client, event_log) == 0


async def test_two_validators_judging_the_same_batch_at_once_decide_once(
    event_log: EventLog,
    storage: FilesystemStorage,
    secrets: SecretStore,
    redis_client: aioredis.Redis,
    make_validator: MakeValidator,
) -> None:
    # What happens when a validator reclaims the entry of one that was slow, not dead.
    batch_id = await _new_batch(event_log, storage, secrets)

    await asyncio.gather(
        make_validator("validator-1").judge(batch_id),
        make_validator("validator-2").judge(batch_id),
    )

    [verdict] = await _verdicts(event_log, batch_id)
    assert isinstance(verdict, BatchValidated)
    assert (await _jobs(redis_client, event_log))["normal"] == [batch_id.encode()]


async def _deliver_until_poison(thief: ConsumerGroup) -> None:
    """A validator that crashes on every entry it takes, over and over."""
    await thief.ensure()
    await thief.read(100, None)
    for _ in range(MAX_DELIVERIES):
        await thief.reclaim(100)


async def test_a_poison_entry_fails_the_batch_and_is_dead_lettered(
    event_log: EventLog,
    storage: FilesystemStorage,
    secrets: SecretStore,
    redis_client: aioredis.Redis,
    make_validator: MakeValidator,
    validator_group: Callable[..., ConsumerGroup],
) -> None:
    batch_id = await _new_batch(event_log, storage, secrets)
    [_, created] = await event_log.read()
    await _deliver_until_poison(validator_group("crashing", lease_ms=0))

    await make_validator(lease_ms=0).drain()

    assert await _verdicts(event_log, batch_id) == [
        BatchFailed(
            failed_at=NOW,
            errors=[
                BatchError(
                    code="validation_failed", message="Validating the batch failed repeatedly."
                )
            ],
        )
    ]
    [dead] = await _dead_letters(redis_client, event_log)
    assert dead[b"type"] == b"batch.created"
    assert dead[b"source_id"] == str(created.stream_id).encode()
    assert dead[b"source_stream"] == event_log.keys.global_stream.encode()
    assert dead[b"reason"] == f"delivered {MAX_DELIVERIES + 2} times".encode()
    assert await _pending(redis_client, event_log) == 0
    assert await _secret_keys(redis_client, event_log) == []
    assert await _jobs(redis_client, event_log) == {p: [] for p in PRIORITY_CLASSES}


async def test_a_poison_entry_of_an_already_validated_batch_does_not_fail_it(
    event_log: EventLog,
    storage: FilesystemStorage,
    secrets: SecretStore,
    redis_client: aioredis.Redis,
    make_validator: MakeValidator,
    validator_group: Callable[..., ConsumerGroup],
) -> None:
    # The verdict was appended every time, but the acknowledgement never made it.
    batch_id = await _new_batch(event_log, storage, secrets)
    await _deliver_until_poison(validator_group("crashing", lease_ms=0))
    await make_validator().judge(batch_id)

    await make_validator(lease_ms=0).drain()

    [verdict] = await _verdicts(event_log, batch_id)
    assert isinstance(verdict, BatchValidated)
    assert (await _jobs(redis_client, event_log))["normal"] == [batch_id.encode()]
    assert await secrets.get(batch_id, TENANT) == HEADERS
    assert len(await _dead_letters(redis_client, event_log)) == 1
    assert await _pending(redis_client, event_log) == 0


async def test_a_batch_whose_validation_raises_fails_at_once_with_a_clear_error(
    event_log: EventLog,
    storage: FilesystemStorage,
    secrets: SecretStore,
    redis_client: aioredis.Redis,
    make_validator: MakeValidator,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken_file = await upload_input(event_log, storage, VALID)
    broken = await create_batch(event_log, broken_file)
    healthy = await _new_batch(event_log, storage, secrets)
    attempts: list[str] = []

    class Failing(FilesystemStorage):
        async def read(self, key: str, offset: int = 0) -> ObjectReader:
            if key == file_object_key(TENANT, broken_file):
                attempts.append(key)
                raise RecursionError("a bug the validator did not expect")
            return await super().read(key, offset)

    failing = Failing(tmp_path / "objects")
    await failing.open()

    # Lease 0: an entry left unacknowledged would be retried at once rather than after a lease.
    await make_validator(lease_ms=0, storage=failing).drain()

    assert len(attempts) == 1, "the same failure again would only make the batch wait"
    [verdict] = await _verdicts(event_log, broken)
    assert isinstance(verdict, BatchFailed)
    assert [(e.code, e.message) for e in verdict.errors] == [
        ("validation_failed", "Validating the input file failed (RecursionError).")
    ]
    assert await _dead_letters(redis_client, event_log) == []
    # The other batch was not held up by the broken one.
    [verdict] = await _verdicts(event_log, healthy)
    assert isinstance(verdict, BatchValidated)
    assert await _pending(redis_client, event_log) == 0
    assert "a bug the validator did not expect" in caplog.text, "the stack goes to the log"


async def test_storage_out_of_reach_leaves_the_entry_pending_for_a_retry(
    event_log: EventLog,
    storage: FilesystemStorage,
    secrets: SecretStore,
    redis_client: aioredis.Redis,
    make_validator: MakeValidator,
    tmp_path: Path,
) -> None:
    batch_id = await _new_batch(event_log, storage, secrets)

    class Unreachable(FilesystemStorage):
        async def read(self, key: str, offset: int = 0) -> ObjectReader:
            raise StorageUnavailable("the volume is not mounted")

    unreachable = Unreachable(tmp_path / "objects")
    await unreachable.open()
    with pytest.raises(StorageUnavailable):  # `run` backs off and tries again
        await make_validator(storage=unreachable).drain()
    assert await _verdicts(event_log, batch_id) == []
    assert await _pending(redis_client, event_log) == 1

    await make_validator(lease_ms=0).drain()  # the lease ran out; storage is back

    [verdict] = await _verdicts(event_log, batch_id)
    assert isinstance(verdict, BatchValidated)
    assert await _pending(redis_client, event_log) == 0
