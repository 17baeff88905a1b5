"""The validating phase on a live stack: a bad input file fails the batch with errors that say
which line and why, with OpenAI's codes; a good one puts it in progress."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from openai import OpenAI

from tests.harness.batch_helpers import (
    CHAT,
    chat_file,
    chat_line,
    create_batch,
    jsonl,
    line_errors,
    upload,
    validated,
    wait_until_status,
)
from tests.harness.invalid_inputs import INVALID_INPUTS, Expected, raw_lines
from tests.harness.live_stack import LiveStack, StartStack, isolated_stack
from tests.harness.sdk import sdk_client
from tests.harness.stack_internals import stack_internals

MAX_REQUESTS = 5
MAX_ERRORS = 3


@pytest.mark.parametrize(
    ("content", "expected"),
    [pytest.param(content, expected, id=name) for name, content, expected in INVALID_INPUTS],
)
def test_a_bad_input_file_fails_the_batch_naming_each_line(
    client: OpenAI, content: bytes, expected: Expected
) -> None:
    batch = validated(client, content)
    assert line_errors(batch) == expected
    assert batch.failed_at is not None
    assert batch.created_at <= batch.failed_at
    assert batch.in_progress_at is None
    assert batch.errors is not None
    assert batch.errors.data is not None
    assert all(error.message for error in batch.errors.data)


def test_a_bom_and_blank_lines_are_tolerated(client: OpenAI) -> None:
    content = b"\xef\xbb\xbf" + b"\n" + chat_file(3) + b"\n\n"
    batch = validated(client, content)
    assert batch.status == "in_progress", batch.errors
    assert batch.request_counts is not None
    assert batch.request_counts.total == 3


def test_moderations_need_no_model(client: OpenAI) -> None:
    lines = [
        {"custom_id": f"m{i}", "method": "POST", "url": "/v1/moderations",
         "body": {"input": "is this fine?"}}
        for i in range(2)
    ]  # fmt: skip
    file_id = upload(client, jsonl(lines))
    batch = client.batches.create(
        input_file_id=file_id, endpoint="/v1/moderations", completion_window="24h"
    )
    judged = wait_until_status(client, batch.id, {"in_progress", "failed"})
    assert judged.status == "in_progress", judged.errors
    assert judged.request_counts is not None
    assert judged.request_counts.total == 2
    assert judged.model is None


def test_other_endpoints_still_need_a_model(client: OpenAI) -> None:
    line = {"custom_id": "e", "method": "POST", "url": "/v1/embeddings", "body": {"input": "x"}}
    file_id = upload(client, jsonl([line]))
    batch = client.batches.create(
        input_file_id=file_id, endpoint="/v1/embeddings", completion_window="24h"
    )
    judged = wait_until_status(client, batch.id, {"in_progress", "failed"})
    assert line_errors(judged) == [("missing_required_parameter", 1, "body.model")]


@pytest.fixture(scope="module")
def limited_stack(
    redis_url: str, postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveStack]:
    overrides = {"max_requests_per_batch": MAX_REQUESTS, "max_validation_errors": MAX_ERRORS}
    files = tmp_path_factory.mktemp("files")
    with isolated_stack(redis_url, postgres_url, files, processor_overrides=overrides) as stack:
        yield stack


@pytest.fixture
def limited(limited_stack: LiveStack, tenant: str) -> Iterator[OpenAI]:
    headers = {limited_stack.settings.tenant_header: tenant}
    with sdk_client(limited_stack, default_headers=headers) as openai_client:
        yield openai_client


def test_a_file_over_the_request_limit_fails_at_the_first_line_too_many(limited: OpenAI) -> None:
    batch = validated(limited, b"\n" + chat_file(MAX_REQUESTS + 2))
    assert line_errors(batch) == [("too_many_requests", MAX_REQUESTS + 2, None)]


def test_a_file_at_the_request_limit_is_valid(limited: OpenAI) -> None:
    batch = validated(limited, chat_file(MAX_REQUESTS))
    assert batch.status == "in_progress", batch.errors
    assert batch.request_counts is not None
    assert batch.request_counts.total == MAX_REQUESTS


def test_at_most_max_validation_errors_are_reported(limited: OpenAI) -> None:
    content = raw_lines(*(chat_line(f"r{i}", method="GET") for i in range(MAX_REQUESTS)))
    batch = validated(limited, content)
    assert line_errors(batch) == [("invalid_method", n, "method") for n in (1, 2, 3)]


def test_a_batch_endpoint_mismatch_is_reported_on_every_line(client: OpenAI) -> None:
    lines = [chat_line("a", url="/v1/embeddings"), chat_line("b", url=CHAT + "/")]
    batch = validated(client, jsonl(lines))
    assert line_errors(batch) == [("invalid_url", 1, "url"), ("invalid_url", 2, "url")]


def test_a_model_name_postgresql_cannot_store_fails_its_line(client: OpenAI) -> None:
    # A NUL is valid in JSON ("\u0000") but not in a PostgreSQL text column: accepted, it would
    # stop the projector at this batch's `batch.validated`, and every batch with it.
    batch = validated(client, jsonl([chat_line("a", "m\u0000")]))
    assert line_errors(batch) == [("invalid_value", 1, "body.model")]
    assert validated(client).status == "in_progress"


async def test_a_batch_whose_window_ends_before_validation_expires(
    start_stack: StartStack, tenant: str
) -> None:
    stack = start_stack(with_processor=False)
    headers = {stack.settings.tenant_header: tenant, "Authorization": "Bearer sk-expiring"}
    with sdk_client(stack, default_headers=headers) as client:
        batch = create_batch(client)
        late = float(batch.expires_at or 0) + 1.0
        async with stack_internals(stack.settings, clock=lambda: late) as inside:
            assert await inside.secrets.get(batch.id, tenant)
            await inside.validator.drain()
            assert await inside.secrets.get(batch.id, tenant) == {}
        expired = wait_until_status(client, batch.id, {"expired"})
    assert expired.expired_at == int(late)
    assert expired.in_progress_at is None
    assert expired.errors is None
