"""What `POST /v1/batches` refuses, over raw HTTP: each a 400 (or 404) in OpenAI's error envelope
naming the offending `param`, and no batch created; and what configuration allows beyond
OpenAI's rules."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from openai import OpenAI

from batch_gateway.gateway.settings import DEFAULT_ENDPOINTS, BatchLimits
from tests.harness.batch_helpers import CHAT, chat_file, jsonl, upload, wait_until_status
from tests.harness.live_stack import StartStack
from tests.harness.openai_errors import error_of
from tests.harness.sdk import sdk_client

UNKNOWN_FILE = "file-" + "0" * 24
UNKNOWN_BATCH = "batch_" + "0" * 32
DAY = 86_400


@pytest.fixture
def input_file(client: OpenAI) -> str:
    return upload(client, chat_file())


# In place of a field's value: leave the field out.
_DROP = object()


def _body(input_file: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "input_file_id": input_file,
        "endpoint": CHAT,
        "completion_window": "24h",
    }
    body.update(changes)
    return {name: value for name, value in body.items() if value is not _DROP}


_SIXTEEN = {f"k{i}": "v" for i in range(16)}

REFUSED: list[tuple[str, dict[str, Any], str, str | None]] = [
    ("unknown endpoint", {"endpoint": "/v1/nope"}, "endpoint", "invalid_value"),
    ("endpoint not a string", {"endpoint": 5}, "endpoint", "invalid_type"),
    ("48h window", {"completion_window": "48h"}, "completion_window", "invalid_value"),
    ("17 metadata pairs", {"metadata": _SIXTEEN | {"k16": "v"}}, "metadata", "invalid_value"),
    ("65-char metadata key", {"metadata": {"k" * 65: "v"}}, "metadata", "invalid_value"),
    ("513-char value", {"metadata": {"k": "v" * 513}}, "metadata.k", "invalid_value"),
    ("non-string value", {"metadata": {"k": 1}}, "metadata.k", None),
    ("NUL in a value", {"metadata": {"k": "a\u0000b"}}, "metadata", "invalid_value"),
    ("NUL in a key", {"metadata": {"k\u0000": "v"}}, "metadata", "invalid_value"),
    ("metadata not an object", {"metadata": ["k", "v"]}, "metadata", None),
    (
        "bad anchor",
        {"output_expires_after": {"anchor": "completed_at", "seconds": 3600}},
        "output_expires_after.anchor",
        None,
    ),
    (
        "seconds too few",
        {"output_expires_after": {"anchor": "created_at", "seconds": 3599}},
        "output_expires_after.seconds",
        None,
    ),
    (
        "seconds too many",
        {"output_expires_after": {"anchor": "created_at", "seconds": 2_592_001}},
        "output_expires_after.seconds",
        None,
    ),
    (
        "seconds a string",
        {"output_expires_after": {"anchor": "created_at", "seconds": "3600"}},
        "output_expires_after.seconds",
        None,
    ),
    (
        "seconds missing",
        {"output_expires_after": {"anchor": "created_at"}},
        "output_expires_after.seconds",
        None,
    ),
    ("unknown field", {"priority": "high"}, "priority", "unknown_parameter"),
    ("no input file", {"input_file_id": _DROP}, "input_file_id", "missing_required_parameter"),
    ("no endpoint", {"endpoint": _DROP}, "endpoint", "missing_required_parameter"),
    ("no window", {"completion_window": _DROP}, "completion_window", "missing_required_parameter"),
]


@pytest.mark.parametrize(
    ("changes", "param", "code"),
    [pytest.param(changes, param, code, id=name) for name, changes, param, code in REFUSED],
)
def test_a_bad_create_is_a_400_naming_the_param(
    http: httpx.Client, input_file: str, changes: dict[str, Any], param: str, code: str | None
) -> None:
    response = http.post("/v1/batches", json=_body(input_file, **changes))
    error = error_of(response, 400)
    assert error["type"] == "invalid_request_error"
    assert (error["param"], error["code"]) == (param, code)
    assert response.headers["x-should-retry"] == "false"
    assert http.get("/v1/batches").json()["data"] == []


@pytest.mark.parametrize("content", [b'{"input_file_id": ', b"", b"[]", b'"batch"', b"\xff"])
def test_a_body_that_is_not_a_json_object_is_a_400(http: httpx.Client, content: bytes) -> None:
    response = http.post(
        "/v1/batches", content=content, headers={"content-type": "application/json"}
    )
    assert error_of(response, 400)["param"] is None


def test_the_limits_themselves_are_allowed(http: httpx.Client, input_file: str) -> None:
    most = {f"{i:02d}" + "k" * 62: "v" * 512 for i in range(16)}
    for seconds in (3600, 2_592_000):
        body = _body(
            input_file,
            metadata=most,
            output_expires_after={"anchor": "created_at", "seconds": seconds},
        )
        response = http.post("/v1/batches", json=body)
        assert response.status_code == 200, response.text
        assert response.json()["metadata"] == most


@pytest.mark.parametrize("file_id", [UNKNOWN_FILE, "not-a-file-id"])
def test_an_unknown_input_file_is_a_404(http: httpx.Client, file_id: str) -> None:
    error = error_of(http.post("/v1/batches", json=_body(file_id)), 404)
    assert error["param"] == "input_file_id"
    assert file_id in error["message"]


def test_another_tenants_input_file_is_a_404(http: httpx.Client, other_client: OpenAI) -> None:
    theirs = upload(other_client, chat_file())
    error = error_of(http.post("/v1/batches", json=_body(theirs)), 404)
    assert error["param"] == "input_file_id"
    assert http.get("/v1/batches").json()["data"] == []


def test_a_deleted_input_file_is_a_404(client: OpenAI, http: httpx.Client) -> None:
    file_id = upload(client, chat_file())
    client.files.delete(file_id)
    assert error_of(http.post("/v1/batches", json=_body(file_id)), 404)["param"] == "input_file_id"


def test_an_input_file_of_another_purpose_is_a_400(client: OpenAI, http: httpx.Client) -> None:
    file_id = upload(client, chat_file(), purpose="assistants")
    error = error_of(http.post("/v1/batches", json=_body(file_id)), 400)
    assert error["param"] == "input_file_id"
    assert "batch" in error["message"]


@pytest.mark.parametrize("batch_id", [UNKNOWN_BATCH, "batch_nope"])
def test_an_unknown_batch_is_a_404(http: httpx.Client, batch_id: str) -> None:
    for response in (
        http.get(f"/v1/batches/{batch_id}"),
        http.post(f"/v1/batches/{batch_id}/cancel"),
    ):
        error = error_of(response, 404)
        assert error["type"] == "invalid_request_error"
        assert batch_id in error["message"]


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": "x"}, "limit"),
        ({"after": UNKNOWN_BATCH}, "after"),
    ],
)
def test_a_bad_list_query_is_a_400(http: httpx.Client, params: dict[str, Any], param: str) -> None:
    assert error_of(http.get("/v1/batches", params=params), 400)["param"] == param


def test_configuration_allows_longer_windows_and_more_endpoints(start_stack: StartStack) -> None:
    limits = BatchLimits(
        endpoints=[*DEFAULT_ENDPOINTS, "/v1/rerank"], completion_windows=["24h", "48h"]
    )
    stack = start_stack(batches=limits)
    with sdk_client(stack) as client, httpx.Client(base_url=stack.base_url) as http:
        chat = http.post(
            "/v1/batches", json=_body(upload(client, chat_file()), completion_window="48h")
        )
        assert chat.status_code == 200, chat.text
        assert chat.json()["expires_at"] == chat.json()["created_at"] + 2 * DAY
        lines = [
            {"custom_id": f"r{i}", "method": "POST", "url": "/v1/rerank",
             "body": {"model": "reranker", "query": "q", "documents": ["a", "b"]}}
            for i in range(2)
        ]  # fmt: skip
        body = _body(upload(client, jsonl(lines)), endpoint="/v1/rerank")
        rerank = http.post("/v1/batches", json=body)
        assert rerank.status_code == 200, rerank.text
        assert rerank.json()["expires_at"] == rerank.json()["created_at"] + DAY
        judged = wait_until_status(client, rerank.json()["id"], {"in_progress", "failed"})
        assert judged.status == "in_progress", judged.errors
        assert judged.model == "reranker"
        still_refused = http.post("/v1/batches", json=_body(UNKNOWN_FILE, completion_window="72h"))
        assert error_of(still_refused, 400)["param"] == "completion_window"
