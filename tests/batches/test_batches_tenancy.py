"""Tenant isolation of the Batches API: another tenant's batch or input file is a 404 exactly
like one that does not exist, and never shows in a list."""

from __future__ import annotations

import httpx
import openai
import pytest
from openai import OpenAI

from tests.harness.batch_helpers import CHAT, chat_file, create_batch, upload
from tests.harness.live_stack import StartStack
from tests.harness.openai_errors import error_of
from tests.harness.sdk import sdk_client

UNKNOWN_BATCH = "batch_" + "0" * 32


def _same_error_as_unknown(response: httpx.Response, unknown: httpx.Response, status: int) -> None:
    theirs, nobodys = error_of(response, status), error_of(unknown, status)
    assert theirs | {"message": ""} == nobodys | {"message": ""}
    assert theirs["message"].split(":")[0] == nobodys["message"].split(":")[0]


def test_another_tenants_batch_is_a_404_and_stays_as_it_was(
    http: httpx.Client, client: OpenAI, other_client: OpenAI
) -> None:
    mine = create_batch(client)
    theirs = create_batch(other_client)
    _same_error_as_unknown(
        http.get(f"/v1/batches/{theirs.id}"), http.get(f"/v1/batches/{UNKNOWN_BATCH}"), 404
    )
    _same_error_as_unknown(
        http.post(f"/v1/batches/{theirs.id}/cancel"),
        http.post(f"/v1/batches/{UNKNOWN_BATCH}/cancel"),
        404,
    )
    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve(theirs.id)
    with pytest.raises(openai.NotFoundError):
        client.batches.cancel(theirs.id)
    assert other_client.batches.retrieve(theirs.id).status in ("validating", "in_progress")
    assert [batch.id for batch in client.batches.list()] == [mine.id]
    assert [batch.id for batch in other_client.batches.list()] == [theirs.id]


def test_another_tenants_batch_is_no_list_cursor(
    http: httpx.Client, client: OpenAI, other_client: OpenAI
) -> None:
    create_batch(client)
    theirs = create_batch(other_client)
    _same_error_as_unknown(
        http.get("/v1/batches", params={"after": theirs.id}),
        http.get("/v1/batches", params={"after": UNKNOWN_BATCH}),
        400,
    )


def test_another_tenants_input_file_is_a_404(
    http: httpx.Client, client: OpenAI, other_client: OpenAI
) -> None:
    their_file = upload(other_client, chat_file())
    with pytest.raises(openai.NotFoundError) as raised:
        client.batches.create(input_file_id=their_file, endpoint=CHAT, completion_window="24h")
    assert raised.value.status_code == 404
    assert isinstance(raised.value.body, dict)
    assert raised.value.body["param"] == "input_file_id"
    body = {"input_file_id": their_file, "endpoint": CHAT, "completion_window": "24h"}
    nobodys = dict(body, input_file_id="file-" + "0" * 24)
    _same_error_as_unknown(
        http.post("/v1/batches", json=body), http.post("/v1/batches", json=nobodys), 404
    )
    assert list(client.batches.list()) == []
    assert list(other_client.batches.list()) == []


def test_tenants_by_api_key_see_only_their_own_batches(start_stack: StartStack) -> None:
    stack = start_stack(api_keys={"sk-a": "tenant-a", "sk-b": "tenant-b"})
    with sdk_client(stack, api_key="sk-a") as a, sdk_client(stack, api_key="sk-b") as b:
        mine = create_batch(a)
        theirs = create_batch(b)
        assert [batch.id for batch in a.batches.list()] == [mine.id]
        assert [batch.id for batch in b.batches.list()] == [theirs.id]
        with pytest.raises(openai.NotFoundError):
            a.batches.retrieve(theirs.id)
        with pytest.raises(openai.NotFoundError):
            b.batches.cancel(mine.id)
    with (
        sdk_client(stack, api_key="sk-unknown") as stranger,
        pytest.raises(openai.AuthenticationError),
    ):
        stranger.batches.list()
