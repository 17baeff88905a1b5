"""Size and line limits: refused while the upload streams in, and nothing left in storage."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from batch_gateway.gateway.settings import FileLimits
from tests.harness.live_stack import LiveStack, StartStack
from tests.harness.multipart_forms import CONTENT_TYPE, field_part, file_part, form_body
from tests.harness.openai_errors import error_of
from tests.harness.stored_files import stored_files

MAX_BYTES = 1000
MAX_LINES = 3


@pytest.fixture
def limited(start_stack: StartStack) -> LiveStack:
    return start_stack(files=FileLimits(max_bytes=MAX_BYTES, max_batch_lines=MAX_LINES))


@pytest.fixture
def http(limited: LiveStack) -> Iterator[httpx.Client]:
    # Overrides the module-stack client of conftest: these tests need the limited stack.
    with httpx.Client(base_url=limited.base_url) as client:
        yield client


def eventually(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll for what the server does on its own time, such as cleaning up after a hang-up."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def post(http: httpx.Client, *parts: bytes) -> httpx.Response:
    return http.post("/v1/files", content=form_body(parts), headers={"content-type": CONTENT_TYPE})


def listed(http: httpx.Client) -> list[str]:
    return [file["id"] for file in http.get("/v1/files").json()["data"]]


@pytest.mark.parametrize("size", [MAX_BYTES + 1, 64 * 1024, 3 * 1024 * 1024])
def test_an_oversized_upload_is_refused_and_leaves_nothing(
    limited: LiveStack, http: httpx.Client, size: int
) -> None:
    response = http.post(
        "/v1/files", data={"purpose": "user_data"}, files={"file": ("big.bin", b"x" * size)}
    )

    error = error_of(response, 413)
    assert error["param"] in ("file", None)
    assert listed(http) == []
    assert stored_files(limited.settings) == []


def test_an_oversized_chunked_upload_is_refused_while_streaming(
    limited: LiveStack, http: httpx.Client
) -> None:
    # No content-length: only counting the bytes as they arrive can catch this one.
    whole = form_body([field_part("purpose", "user_data"), file_part(b"x" * 64 * 1024)])

    def body() -> Iterator[bytes]:
        for start in range(0, len(whole), 4096):
            yield whole[start : start + 4096]

    response = http.post("/v1/files", content=body(), headers={"content-type": CONTENT_TYPE})

    assert error_of(response, 413)["code"] == "file_too_large"
    assert listed(http) == []
    assert stored_files(limited.settings) == []


def test_an_upload_of_exactly_the_limit_is_stored(limited: LiveStack, http: httpx.Client) -> None:
    response = http.post(
        "/v1/files",
        data={"purpose": "user_data"},
        files={"file": ("max.bin", b"x" * MAX_BYTES)},
    )

    assert response.status_code == 200, response.text
    assert response.json()["bytes"] == MAX_BYTES
    assert http.get(f"/v1/files/{response.json()['id']}/content").content == b"x" * MAX_BYTES
    assert len(stored_files(limited.settings)) == 1


def test_the_size_error_says_what_the_limit_is(http: httpx.Client) -> None:
    response = post(http, field_part("purpose", "user_data"), file_part(b"x" * 2000))

    error = error_of(response, 413)
    assert (error["param"], error["code"]) == ("file", "file_too_large")
    assert str(MAX_BYTES) in error["message"]


@pytest.mark.parametrize(
    "content", [b"{}\n" * (MAX_LINES + 1), b"{}\n" * MAX_LINES + b"{}", b"\n" * (MAX_LINES + 1)]
)
@pytest.mark.parametrize("purpose_first", [True, False], ids=["purpose-first", "purpose-last"])
def test_a_batch_file_with_too_many_lines_is_refused_and_leaves_nothing(
    limited: LiveStack, http: httpx.Client, content: bytes, purpose_first: bool
) -> None:
    purpose, file = field_part("purpose", "batch"), file_part(content)
    response = post(http, *((purpose, file) if purpose_first else (file, purpose)))

    error = error_of(response, 400)
    assert (error["param"], error["code"]) == ("file", "too_many_lines")
    assert str(MAX_LINES) in error["message"]
    assert listed(http) == []
    assert stored_files(limited.settings) == []


@pytest.mark.parametrize("content", [b"{}\n" * MAX_LINES, b"{}\n" * (MAX_LINES - 1) + b"{}", b""])
@pytest.mark.parametrize("purpose_first", [True, False], ids=["purpose-first", "purpose-last"])
def test_a_batch_file_within_the_line_limit_is_stored(
    limited: LiveStack, http: httpx.Client, content: bytes, purpose_first: bool
) -> None:
    purpose, file = field_part("purpose", "batch"), file_part(content)
    response = post(http, *((purpose, file) if purpose_first else (file, purpose)))

    assert response.status_code == 200, response.text
    assert listed(http) == [response.json()["id"]]
    assert len(stored_files(limited.settings)) == 1


def test_the_line_limit_is_for_batch_files_only(limited: LiveStack, http: httpx.Client) -> None:
    response = post(http, field_part("purpose", "user_data"), file_part(b"\n" * 50))

    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "parts",
    [
        [file_part(b"{}\n")],
        [field_part("purpose", "nonsense"), file_part(b"{}\n")],
        [
            field_part("purpose", "batch"),
            field_part("expires_after[anchor]", "created_at"),
            field_part("expires_after[seconds]", "5"),
            file_part(b"{}\n"),
        ],
        [file_part(b"{}\n"), field_part("purpose", "batch"), field_part("expires_after", "{")],
    ],
    ids=["no-purpose", "bad-purpose", "bad-expiry-first", "bad-expiry-last"],
)
def test_an_upload_refused_for_its_fields_leaves_nothing(
    limited: LiveStack, http: httpx.Client, parts: list[bytes]
) -> None:
    error_of(post(http, *parts), 400)
    assert listed(http) == []
    assert stored_files(limited.settings) == []


def test_a_client_that_hangs_up_mid_upload_leaves_nothing(
    limited: LiveStack, http: httpx.Client
) -> None:
    body = form_body([field_part("purpose", "user_data"), file_part(b"x" * (MAX_BYTES - 100))])
    head = (
        f"POST /v1/files HTTP/1.1\r\nHost: test\r\nContent-Type: {CONTENT_TYPE}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", limited.settings.port)) as connection:
        connection.sendall(head + body[: len(body) // 2])
        # The temp file shows the server is storing the part when the client goes away.
        assert eventually(lambda: bool(stored_files(limited.settings)))

    assert eventually(lambda: stored_files(limited.settings) == [])
    assert listed(http) == []
