"""Hostile ids, cursors, query values, event ids, form fields and bodies: every one a clear 4xx in
OpenAI's envelope, never a 5xx, and never a value that reaches PostgreSQL or Redis unchecked."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from batch_gateway.gateway.settings import FileLimits
from tests.harness.live_stack import StartStack
from tests.harness.multipart_forms import (
    BOUNDARY,
    CONTENT_TYPE,
    field_part,
    file_part,
    form_body,
)
from tests.harness.openai_errors import error_of
from tests.harness.stored_files import stored_files

BAD_IDS = ["%00", "file-%00", "batch_%00", "a%0Db", "%C3%A9", "x" * 300, "%F0%9F%9A%80"]


@pytest.mark.parametrize("bad", BAD_IDS)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/files/{}"),
        ("DELETE", "/v1/files/{}"),
        ("GET", "/v1/files/{}/content"),
        ("GET", "/v1/batches/{}"),
        ("POST", "/v1/batches/{}/cancel"),
        ("GET", "/v1/batches/{}/events"),
    ],
)
def test_an_id_that_cannot_be_ours_is_a_404(
    http: httpx.Client, method: str, path: str, bad: str
) -> None:
    error = error_of(http.request(method, path.format(bad)), 404)
    assert error["type"] == "invalid_request_error"


@pytest.mark.parametrize("bad", ["%00", "a%00b", "file-%00", "%FF", "x" * 300])
@pytest.mark.parametrize("path", ["/v1/files", "/v1/batches"])
def test_a_cursor_that_cannot_be_ours_is_a_400_naming_after(
    http: httpx.Client, path: str, bad: str
) -> None:
    error = error_of(http.get(f"{path}?after={bad}"), 400)
    assert error["param"] == "after"


@pytest.mark.parametrize("bad", ["%00", "%0Abatch", "%1B[31m", "x" * 300])
def test_a_purpose_filter_with_control_characters_is_a_400(http: httpx.Client, bad: str) -> None:
    error = error_of(http.get(f"/v1/files?purpose={bad}"), 400)
    assert error["param"] == "purpose"


def test_a_purpose_filter_that_matches_nothing_is_an_empty_list(http: httpx.Client) -> None:
    response = http.get("/v1/files?purpose=no-such-purpose")
    assert response.status_code == 200
    assert response.json()["data"] == []


def _a_batch(http: httpx.Client) -> str:
    line = {
        "custom_id": "1",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "m1", "messages": []},
    }
    body = form_body(
        [field_part("purpose", "batch"), file_part(json.dumps(line).encode(), "in.jsonl")]
    )
    uploaded = http.post("/v1/files", content=body, headers={"content-type": CONTENT_TYPE})
    assert uploaded.status_code == 200, uploaded.text
    created = http.post(
        "/v1/batches",
        json={
            "input_file_id": uploaded.json()["id"],
            "endpoint": "/v1/chat/completions",
            "completion_window": "24h",
        },
    )
    assert created.status_code == 200, created.text
    batch_id: str = created.json()["id"]
    return batch_id


BAD_EVENT_IDS = [
    "\u0661\u0667\u0660\u0660-\u0660",  # Arabic-Indic digits, which int() accepts
    "\uff11\uff12\uff13-0",  # fullwidth digits
    "99999999999999999999999-0",  # past a 64-bit stream id
    "1-99999999999999999999999",
    "-1-0",
    "1--0",
    "1-0-0",
    "abc",
    "1 -0",
    "0x10-0",
    "1_000-0",
    "+1-0",
]


@pytest.mark.parametrize("bad", BAD_EVENT_IDS)
def test_an_event_id_that_is_not_a_stream_id_is_a_400(http: httpx.Client, bad: str) -> None:
    batch_id = _a_batch(http)
    by_query = http.get(f"/v1/batches/{batch_id}/events", params={"after": bad})
    assert error_of(by_query, 400)["param"] == "after"
    raw = {b"last-event-id": bad.encode()}  # UTF-8 bytes on the wire
    by_header = http.get(f"/v1/batches/{batch_id}/events", headers=raw)
    assert error_of(by_header, 400)["param"] == "Last-Event-ID"


@pytest.mark.parametrize("charset", ["no-such-charset", "utf-16"])
def test_an_unknown_charset_on_a_form_field_is_a_400(http: httpx.Client, charset: str) -> None:
    purpose = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="purpose"\r\n'
        f"Content-Type: text/plain; charset={charset}\r\n\r\nbatch\r\n"
    ).encode()
    body = form_body([purpose, file_part(b"{}\n", "in.jsonl")])
    response = http.post("/v1/files", content=body, headers={"content-type": CONTENT_TYPE})
    assert error_of(response, 400)["param"] == "purpose"


def test_a_form_without_a_file_is_a_400_naming_file(http: httpx.Client) -> None:
    body = form_body([field_part("purpose", "batch")])
    response = http.post("/v1/files", content=body, headers={"content-type": CONTENT_TYPE})
    assert error_of(response, 400)["param"] == "file"


def test_a_create_body_nested_deeply_is_a_400(http: httpx.Client) -> None:
    depth = 5000
    body = '{"metadata": ' + "[" * depth + "]" * depth + "}"
    response = http.post("/v1/batches", content=body, headers={"content-type": "application/json"})
    error_of(response, 400)


def test_a_huge_create_body_is_a_413(http: httpx.Client) -> None:
    body = b'{"metadata": {"a": "' + b"x" * (8 * 1024 * 1024) + b'"}}'
    response = http.post("/v1/batches", content=body, headers={"content-type": "application/json"})
    assert error_of(response, 413)["type"] == "invalid_request_error"


def test_an_upload_that_stalls_is_dropped_and_nothing_is_stored(start_stack: StartStack) -> None:
    """A client that sends part of a form and then nothing gets a 408 once the idle timeout
    passes, instead of holding the connection for ever; none of its bytes stay in storage."""
    stack = start_stack(files=FileLimits(upload_idle_timeout_seconds=0.5))
    head = form_body([field_part("purpose", "batch"), file_part(b'{"a": 1}\n' * 100)])[:-40]

    def trickle() -> Iterator[bytes]:
        yield head
        time.sleep(3)  # the client stalls: longer than the server's idle timeout
        yield b"never read"

    with httpx.Client(base_url=stack.base_url, timeout=30) as http:
        response = http.post("/v1/files", content=trickle(), headers={"content-type": CONTENT_TYPE})
        error = error_of(response, 408)
        assert error["code"] == "request_timeout"
        assert http.get("/v1/files").json()["data"] == []
    assert stored_files(stack.settings) == []
