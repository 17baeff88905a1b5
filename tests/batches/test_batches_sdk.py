"""The Batches API through the official OpenAI SDK in strict response validation mode: what a
batch looks like when created and once validated, retrieve, list and its pagination, and
read-your-writes."""

from __future__ import annotations

import time
from typing import Any

import httpx
from openai import OpenAI
from openai.types import Batch
from openai.types.batch_request_counts import BatchRequestCounts

from batch_gateway.events.batch_events import BatchCreated
from tests.harness.batch_helpers import (
    CHAT,
    chat_file,
    chat_line,
    create_batch,
    jsonl,
    upload,
    validated,
    wait_until_status,
)
from tests.harness.stack_internals import StackInternals

DAY = 86_400
LATER_TIMESTAMPS = (
    "in_progress_at",
    "finalizing_at",
    "completed_at",
    "failed_at",
    "expired_at",
    "cancelling_at",
    "cancelled_at",
)


def test_create_answers_a_validating_batch_with_openai_fields(client: OpenAI) -> None:
    file_id = upload(client, chat_file())
    before = int(time.time())
    batch = client.batches.create(input_file_id=file_id, endpoint=CHAT, completion_window="24h")
    after = int(time.time())
    assert batch.id.startswith("batch_")
    assert batch.object == "batch"
    assert batch.status == "validating"
    assert (batch.endpoint, batch.input_file_id, batch.completion_window) == (
        CHAT,
        file_id,
        "24h",
    )
    assert before <= batch.created_at <= after
    assert batch.expires_at == batch.created_at + DAY
    assert batch.request_counts == BatchRequestCounts(completed=0, failed=0, total=0)
    assert batch.usage is not None
    assert batch.usage.total_tokens == batch.usage.input_tokens == batch.usage.output_tokens == 0
    assert all(getattr(batch, name) is None for name in LATER_TIMESTAMPS)
    assert batch.errors is None
    assert batch.output_file_id is None
    assert batch.error_file_id is None
    assert batch.model is None
    assert batch.metadata is None


def test_validation_puts_it_in_progress_with_its_total_and_model(client: OpenAI) -> None:
    batch = validated(client, chat_file(4, model="m1"))
    assert batch.status == "in_progress"
    assert batch.request_counts == BatchRequestCounts(completed=0, failed=0, total=4)
    assert batch.model == "m1"
    assert batch.in_progress_at is not None
    assert batch.created_at <= batch.in_progress_at <= int(time.time())
    assert batch.errors is None


def test_a_file_with_two_models_leaves_model_unset(client: OpenAI) -> None:
    batch = validated(client, jsonl([chat_line("a", "m1"), chat_line("b", "m2")]))
    assert batch.status == "in_progress"
    assert batch.request_counts is not None
    assert batch.request_counts.total == 2
    assert batch.model is None


def test_metadata_round_trips(client: OpenAI) -> None:
    metadata = {"project": "nightly-eval", "owner": "ünïcødé", "empty": ""}
    batch = create_batch(client, metadata=metadata)
    assert batch.metadata == metadata
    assert client.batches.retrieve(batch.id).metadata == metadata
    assert [listed.metadata for listed in client.batches.list()] == [metadata]


async def test_output_expires_after_is_kept_with_the_batch(
    client: OpenAI, internals: StackInternals
) -> None:
    # OpenAI's Batch object does not show it: it is the output files' policy, so it lives on in
    # the log for the processors that write them.
    batch = create_batch(client, output_expires_after={"anchor": "created_at", "seconds": 7200})
    created = (await internals.batch_events(batch.id))[0]
    assert isinstance(created, BatchCreated)
    assert created.output_expires_after_seconds == 7200
    plain = create_batch(client)
    created = (await internals.batch_events(plain.id))[0]
    assert isinstance(created, BatchCreated)
    assert created.output_expires_after_seconds is None


def test_retrieve_and_list_answer_the_same_objects_newest_first(client: OpenAI) -> None:
    first = wait_until_status(client, create_batch(client).id, {"in_progress"})
    second = wait_until_status(client, create_batch(client).id, {"in_progress"})
    assert client.batches.retrieve(first.id) == first
    assert client.batches.retrieve(second.id) == second
    assert list(client.batches.list()) == [second, first]


def test_list_pages_through_many_batches(client: OpenAI, http: httpx.Client) -> None:
    file_id = upload(client, chat_file(1))
    created = [
        client.batches.create(input_file_id=file_id, endpoint=CHAT, completion_window="24h")
        for _ in range(155)
    ]
    # Each create answers as of itself, however fast the validator moves the batch on.
    assert {batch.status for batch in created} == {"validating"}
    newest_first = [batch.id for batch in reversed(created)]
    assert [batch.id for batch in client.batches.list(limit=100)] == newest_first
    assert [batch.id for batch in client.batches.list(limit=7)] == newest_first
    assert [batch.id for batch in client.batches.list()] == newest_first

    first_page = _raw_list(http, limit=100)
    assert [item["id"] for item in first_page["data"]] == newest_first[:100]
    assert first_page["has_more"] is True
    assert first_page["first_id"] == newest_first[0]
    assert first_page["last_id"] == newest_first[99]

    last_page = _raw_list(http, limit=100, after=first_page["last_id"])
    assert [item["id"] for item in last_page["data"]] == newest_first[100:]
    assert last_page["has_more"] is False
    assert last_page["first_id"] == newest_first[100]
    assert last_page["last_id"] == newest_first[-1]

    default_page = _raw_list(http)
    assert [item["id"] for item in default_page["data"]] == newest_first[:20]
    assert default_page["has_more"] is True

    exact = _raw_list(http, limit=5, after=newest_first[-6])
    assert [item["id"] for item in exact["data"]] == newest_first[-5:]
    assert exact["has_more"] is False

    empty = _raw_list(http, after=newest_first[-1])
    assert empty == {
        "object": "list",
        "data": [],
        "first_id": None,
        "last_id": None,
        "has_more": False,
    }


def test_an_empty_list_still_has_every_field(http: httpx.Client) -> None:
    page = _raw_list(http)
    assert page == {
        "object": "list",
        "data": [],
        "first_id": None,
        "last_id": None,
        "has_more": False,
    }


def test_a_client_reads_its_own_creates_and_cancels_at_once(client: OpenAI) -> None:
    file_id = upload(client, chat_file(1))
    seen: list[str] = []
    for _ in range(10):
        batch = client.batches.create(input_file_id=file_id, endpoint=CHAT, completion_window="24h")
        seen.insert(0, batch.id)
        assert client.batches.retrieve(batch.id).id == batch.id
        assert [listed.id for listed in client.batches.list(limit=100)] == seen
        cancelled = client.batches.cancel(batch.id)
        assert cancelled.status == "cancelled"
        assert _status(client.batches.retrieve(batch.id)) == "cancelled"
        assert _status(client.batches.list(limit=1).data[0]) == "cancelled"


def _status(batch: Batch) -> str:
    return batch.status


def _raw_list(http: httpx.Client, **params: Any) -> dict[str, Any]:
    response = http.get("/v1/batches", params=params)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    assert list(page) == ["object", "data", "first_id", "last_id", "has_more"]
    return page
