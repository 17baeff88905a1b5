"""Idempotent create: a create repeated with the same `Idempotency-Key` (as the SDK does after a
timeout or a 5xx) returns the batch the first one started, never a second one."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from openai import OpenAI

from tests.harness.batch_helpers import CHAT, chat_file, upload
from tests.harness.openai_errors import error_of

UNKNOWN_FILE = "file-" + "0" * 24


@pytest.fixture
def key() -> str:
    return f"key-{uuid.uuid4()}"


@pytest.fixture
def input_file(client: OpenAI) -> str:
    return upload(client, chat_file())


def _body(input_file: str, **changes: Any) -> dict[str, Any]:
    return {"input_file_id": input_file, "endpoint": CHAT, "completion_window": "24h"} | changes


def _create(http: httpx.Client, key: str, body: dict[str, Any]) -> httpx.Response:
    return http.post("/v1/batches", json=body, headers={"Idempotency-Key": key})


def _listed(http: httpx.Client) -> list[str]:
    return [batch["id"] for batch in http.get("/v1/batches").json()["data"]]


def test_the_same_key_and_body_return_the_first_batch(
    http: httpx.Client, key: str, input_file: str
) -> None:
    first = _create(http, key, _body(input_file, metadata={"run": "1"}))
    assert first.status_code == 200, first.text
    for _ in range(3):
        again = _create(http, key, _body(input_file, metadata={"run": "1"}))
        assert again.status_code == 200, again.text
        assert again.json()["id"] == first.json()["id"]
        assert again.json()["created_at"] == first.json()["created_at"]
    assert _listed(http) == [first.json()["id"]]


def test_concurrent_repeats_start_one_batch(http: httpx.Client, key: str, input_file: str) -> None:
    # A retry may arrive while the first create is still being appended: it waits for that
    # batch and answers with it, never with a second batch.
    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(lambda _: _create(http, key, _body(input_file)), range(8)))
    assert {response.status_code for response in responses} == {200}
    ids = {response.json()["id"] for response in responses}
    assert len(ids) == 1
    assert _listed(http) == list(ids)


def test_the_sdk_can_send_the_key(client: OpenAI, key: str, input_file: str) -> None:
    ids = {
        client.batches.create(
            input_file_id=input_file,
            endpoint=CHAT,
            completion_window="24h",
            extra_headers={"Idempotency-Key": key},
        ).id
        for _ in range(2)
    }
    assert len(ids) == 1
    assert [batch.id for batch in client.batches.list()] == list(ids)


def test_the_same_key_with_another_body_is_a_409(
    http: httpx.Client, key: str, input_file: str
) -> None:
    first = _create(http, key, _body(input_file))
    assert first.status_code == 200, first.text
    for changed in (
        _body(input_file, metadata={"run": "2"}),
        _body(input_file, output_expires_after={"anchor": "created_at", "seconds": 3600}),
        _body(input_file, endpoint="/v1/embeddings"),
    ):
        response = _create(http, key, changed)
        error = error_of(response, 409)
        assert (error["type"], error["code"]) == ("invalid_request_error", "idempotency_key_reused")
        assert response.headers["x-should-retry"] == "false"
    assert _listed(http) == [first.json()["id"]]


def test_keys_are_scoped_per_tenant(
    http: httpx.Client, key: str, input_file: str, other_client: OpenAI
) -> None:
    ours = _create(http, key, _body(input_file))
    assert ours.status_code == 200, ours.text
    their_file = upload(other_client, chat_file())
    headers = {"Idempotency-Key": key}
    theirs = other_client.batches.create(
        input_file_id=their_file, endpoint=CHAT, completion_window="24h", extra_headers=headers
    )
    assert theirs.id != ours.json()["id"]
    assert [batch.id for batch in other_client.batches.list()] == [theirs.id]
    assert _listed(http) == [ours.json()["id"]]


def test_a_failed_create_releases_its_key(
    http: httpx.Client, key: str, input_file: str, other_client: OpenAI
) -> None:
    assert error_of(_create(http, key, _body(UNKNOWN_FILE)), 404)["param"] == "input_file_id"
    their_file = upload(other_client, chat_file())
    assert error_of(_create(http, key, _body(their_file)), 404)["param"] == "input_file_id"
    assert error_of(_create(http, key, _body(input_file, endpoint="/v1/x")), 400)
    assert _listed(http) == []
    corrected = _create(http, key, _body(input_file))
    assert corrected.status_code == 200, corrected.text
    assert _create(http, key, _body(input_file)).json()["id"] == corrected.json()["id"]
    assert _listed(http) == [corrected.json()["id"]]


def test_creates_without_a_key_are_never_merged(http: httpx.Client, input_file: str) -> None:
    ids = [http.post("/v1/batches", json=_body(input_file)).json()["id"] for _ in range(2)]
    assert len(set(ids)) == 2
    assert _listed(http) == ids[::-1]


@pytest.mark.parametrize("bad_key", ["k" * 257, "tab\there"])
def test_a_malformed_key_is_a_400(http: httpx.Client, input_file: str, bad_key: str) -> None:
    error = error_of(_create(http, bad_key, _body(input_file)), 400)
    assert error["param"] == "Idempotency-Key"
    assert _listed(http) == []
