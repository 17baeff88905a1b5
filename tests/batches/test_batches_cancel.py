"""Cancelling a batch in each state. The stack runs without its processor: the tests drain the
validator themselves and append what a processor would (a claim, a completion), so that each
state is reached for certain, never by a race. (The stack serves from its own thread, so the
tests may call it with the blocking SDK client from their event loop.)"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import httpx
import openai
import pytest
from openai import OpenAI
from openai.types import Batch

from batch_gateway.events.batch_events import (
    BatchCancelled,
    BatchCancelRequested,
    BatchCompleted,
    BatchCreated,
    BatchExpired,
    BatchFinalizing,
    BatchInProgress,
    RequestCounts,
    Usage,
)
from batch_gateway.processors.execution.priority import PRIORITY_CLASSES, job_stream
from tests.harness.batch_helpers import create_batch, jsonl, wait_until_status
from tests.harness.live_stack import LiveStack, isolated_stack
from tests.harness.openai_errors import error_of
from tests.harness.sdk import sdk_client
from tests.harness.stack_internals import StackInternals, stack_internals


@pytest.fixture(scope="module")
def idle_stack(
    redis_url: str, postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveStack]:
    files = tmp_path_factory.mktemp("files")
    with isolated_stack(redis_url, postgres_url, files, with_processor=False) as stack:
        yield stack


@pytest.fixture
def idle(idle_stack: LiveStack, tenant: str) -> Iterator[OpenAI]:
    headers = {idle_stack.settings.tenant_header: tenant}
    with sdk_client(idle_stack, default_headers=headers) as openai_client:
        yield openai_client


@pytest.fixture
async def raw(idle_stack: LiveStack, tenant: str) -> AsyncIterator[httpx.AsyncClient]:
    headers = {idle_stack.settings.tenant_header: tenant}
    async with httpx.AsyncClient(base_url=idle_stack.base_url, headers=headers) as http_client:
        yield http_client


@pytest.fixture
async def inside(idle_stack: LiveStack) -> AsyncIterator[StackInternals]:
    async with stack_internals(idle_stack.settings) as internals:
        yield internals


async def _in_progress(
    client: OpenAI, inside: StackInternals, content: bytes | None = None
) -> Batch:
    batch = create_batch(client, content)
    assert batch.status == "validating"
    await inside.validator.drain()
    # The verdict reaches the projection a moment after the validator appended it.
    return wait_until_status(client, batch.id, {"in_progress", "failed"})


async def _queued(inside: StackInternals, batch_id: str) -> bool:
    for priority in PRIORITY_CLASSES:
        entries = await inside.entries(job_stream(inside.log.keys, priority))
        if any(fields[b"batch_id"] == batch_id.encode() for _, fields in entries):
            return True
    return False


def _claim() -> BatchInProgress:
    return BatchInProgress(claimed_at=int(time.time()), processor="processor-1")


async def test_a_validating_batch_is_cancelled_at_once_and_never_validated(
    idle: OpenAI, inside: StackInternals
) -> None:
    batch = create_batch(idle)
    cancelled = idle.batches.cancel(batch.id)
    assert cancelled.status == "cancelled"
    assert cancelled.cancelling_at is not None
    assert cancelled.cancelled_at is not None
    assert batch.created_at <= cancelled.cancelling_at <= cancelled.cancelled_at
    assert idle.batches.retrieve(batch.id) == cancelled

    assert await inside.validator.drain() > 0
    assert idle.batches.retrieve(batch.id) == cancelled
    events = await inside.batch_events(batch.id)
    assert [type(event) for event in events] == [BatchCreated, BatchCancelRequested, BatchCancelled]
    assert not await _queued(inside, batch.id)


async def test_an_unclaimed_batch_in_progress_is_cancelled_at_once(
    idle: OpenAI, inside: StackInternals
) -> None:
    batch = await _in_progress(idle, inside)
    assert batch.status == "in_progress"
    assert await _queued(inside, batch.id)
    cancelled = idle.batches.cancel(batch.id)
    assert cancelled.status == "cancelled"
    assert cancelled.cancelling_at is not None
    assert cancelled.cancelled_at is not None
    assert cancelled.in_progress_at == batch.in_progress_at
    assert cancelled.request_counts == batch.request_counts
    assert idle.batches.retrieve(batch.id) == cancelled
    assert idle.batches.list().data == [cancelled]


async def test_a_claimed_batch_is_cancelling_until_its_processor_stops(
    idle: OpenAI, raw: httpx.AsyncClient, inside: StackInternals
) -> None:
    batch = await _in_progress(idle, inside)
    await inside.advance(batch.id, _claim())
    cancelling = idle.batches.cancel(batch.id)
    assert cancelling.status == "cancelling"
    assert cancelling.cancelling_at is not None
    assert cancelling.cancelled_at is None
    assert idle.batches.retrieve(batch.id) == cancelling

    again = await raw.post(f"/v1/batches/{batch.id}/cancel")
    assert again.status_code == 200, again.text
    assert Batch.model_validate(again.json()) == cancelling
    assert len(await inside.batch_events(batch.id)) == 4  # created, validated, claimed, cancel

    counts = RequestCounts(total=3, completed=1, failed=1)
    await inside.advance(
        batch.id, BatchCancelled(cancelled_at=int(time.time()), request_counts=counts)
    )
    cancelled = wait_until_status(idle, batch.id, {"cancelled"})
    assert cancelled.cancelling_at == cancelling.cancelling_at
    assert cancelled.cancelled_at is not None
    assert cancelled.request_counts is not None
    assert (cancelled.request_counts.completed, cancelled.request_counts.failed) == (1, 1)


Reach = Callable[[OpenAI, StackInternals], Awaitable[Batch]]


async def _completed(client: OpenAI, inside: StackInternals) -> Batch:
    batch = await _in_progress(client, inside)
    now = int(time.time())
    counts = RequestCounts(total=3, completed=3, failed=0)
    await inside.advance(
        batch.id,
        _claim(),
        BatchFinalizing(finalizing_at=now),
        BatchCompleted(completed_at=now, request_counts=counts, usage=Usage(total_tokens=9)),
    )
    return wait_until_status(client, batch.id, {"completed"})


async def _finalizing(client: OpenAI, inside: StackInternals) -> Batch:
    batch = await _in_progress(client, inside)
    await inside.advance(batch.id, _claim(), BatchFinalizing(finalizing_at=int(time.time())))
    return wait_until_status(client, batch.id, {"finalizing"})


async def _failed(client: OpenAI, inside: StackInternals) -> Batch:
    return await _in_progress(client, inside, jsonl([{"custom_id": "a"}]))


async def _cancelled(client: OpenAI, inside: StackInternals) -> Batch:
    return client.batches.cancel(create_batch(client).id)


async def _expired(client: OpenAI, inside: StackInternals) -> Batch:
    batch = create_batch(client)
    await inside.advance(batch.id, BatchExpired(expired_at=int(time.time())))
    return wait_until_status(client, batch.id, {"expired"})


@pytest.mark.parametrize(
    "reach", [_completed, _failed, _cancelled, _expired, _finalizing], ids=lambda f: f.__name__[1:]
)
async def test_a_batch_past_cancelling_is_a_409(
    idle: OpenAI, raw: httpx.AsyncClient, inside: StackInternals, reach: Reach
) -> None:
    batch = await reach(idle, inside)
    status = batch.status
    response = await raw.post(f"/v1/batches/{batch.id}/cancel")
    error = error_of(response, 409)
    assert error["type"] == "invalid_request_error"
    assert error["message"] == f"Cannot cancel a batch with status '{status}'."
    assert response.headers["x-should-retry"] == "false"
    with pytest.raises(openai.ConflictError):
        idle.batches.cancel(batch.id)
    assert idle.batches.retrieve(batch.id) == batch
