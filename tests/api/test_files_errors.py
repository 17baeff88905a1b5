"""Raw HTTP: every refusal is OpenAI's error envelope with the right status, and every
response, refused or not, carries a request id."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from tests.harness.multipart_forms import CONTENT_TYPE, field_part, file_part, form_body
from tests.harness.openai_errors import error_of

LINES = b'{"custom_id": "a"}\n'


def post_form(http: httpx.Client, *parts: bytes) -> httpx.Response:
    return http.post("/v1/files", content=form_body(parts), headers={"content-type": CONTENT_TYPE})


def post_fields(http: httpx.Client, **fields: str) -> httpx.Response:
    """A well-formed upload of LINES with these text fields, as httpx encodes a form."""
    return http.post("/v1/files", data=fields, files={"file": ("in.jsonl", LINES)})


def test_a_missing_file_names_the_file_param(http: httpx.Client) -> None:
    error = error_of(post_form(http, field_part("purpose", "batch")), 400)

    assert error["type"] == "invalid_request_error"
    assert (error["param"], error["code"]) == ("file", "missing_required_parameter")


def test_a_file_sent_as_a_plain_field_is_no_file(http: httpx.Client) -> None:
    response = post_form(http, field_part("purpose", "batch"), field_part("file", "{}"))

    assert error_of(response, 400)["param"] == "file"


def test_a_missing_purpose_names_the_purpose_param(http: httpx.Client) -> None:
    error = error_of(post_form(http, file_part(LINES)), 400)

    assert (error["param"], error["code"]) == ("purpose", "missing_required_parameter")


@pytest.mark.parametrize("purpose", ["batch_output", "fine-tune-results", "nonsense", ""])
def test_a_purpose_a_client_may_not_give_is_refused(http: httpx.Client, purpose: str) -> None:
    error = error_of(post_fields(http, purpose=purpose), 400)

    assert error["param"] == "purpose"
    assert error["code"] == "invalid_value"


def test_two_files_in_one_upload_are_refused(http: httpx.Client) -> None:
    response = post_form(
        http, field_part("purpose", "batch"), file_part(LINES, "a.jsonl"), file_part(LINES)
    )

    assert error_of(response, 400)["param"] == "file"
    assert http.get("/v1/files").json()["data"] == []


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"expires_after[anchor]": "last_active_at", "expires_after[seconds]": "3600"}, "anchor"),
        ({"expires_after[seconds]": "3600"}, "anchor"),
        ({"expires_after[anchor]": "created_at"}, "seconds"),
        ({"expires_after[anchor]": "created_at", "expires_after[seconds]": "3599"}, "seconds"),
        ({"expires_after[anchor]": "created_at", "expires_after[seconds]": "2592001"}, "seconds"),
        ({"expires_after[anchor]": "created_at", "expires_after[seconds]": "1.5e4"}, "seconds"),
        ({"expires_after[anchor]": "created_at", "expires_after[seconds]": "soon"}, "seconds"),
    ],
)
def test_a_bad_expiry_is_refused(http: httpx.Client, fields: dict[str, str], param: str) -> None:
    error = error_of(post_fields(http, purpose="batch", **fields), 400)

    assert error["param"] == f"expires_after.{param}"
    assert http.get("/v1/files").json()["data"] == []


@pytest.mark.parametrize("seconds", [3600, 2592000])
def test_expires_after_may_be_a_json_string(http: httpx.Client, seconds: int) -> None:
    expires_after = json.dumps({"anchor": "created_at", "seconds": seconds})

    response = post_fields(http, purpose="user_data", expires_after=expires_after)

    assert response.status_code == 200, response.text
    created = response.json()
    assert created["expires_at"] == created["created_at"] + seconds


@pytest.mark.parametrize(
    ("document", "param"),
    [
        ("not json", "expires_after"),
        ("[3600]", "expires_after"),
        ('"created_at"', "expires_after"),
        ('{"anchor": "created_at"}', "expires_after.seconds"),
        ('{"anchor": "created_at", "seconds": 60}', "expires_after.seconds"),
        ('{"anchor": "created_at", "seconds": 3600.5}', "expires_after.seconds"),
        ('{"anchor": "uploaded_at", "seconds": 3600}', "expires_after.anchor"),
    ],
)
def test_a_bad_json_expiry_is_refused(http: httpx.Client, document: str, param: str) -> None:
    error = error_of(post_fields(http, purpose="batch", expires_after=document), 400)

    assert error["param"] == param


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/x-www-form-urlencoded", "multipart/form-data", "text/plain"],
)
def test_a_body_that_is_not_a_multipart_form_is_refused(
    http: httpx.Client, content_type: str
) -> None:
    response = http.post(
        "/v1/files", content=b'{"purpose": "batch"}', headers={"content-type": content_type}
    )

    assert error_of(response, 400)["param"] == "file"


@pytest.mark.parametrize(
    "body",
    [
        b"no multipart framing at all",
        form_body([field_part("purpose", "batch"), file_part(LINES)])[:-20],  # cut short
        b"--batch-gateway-test-boundary\r\nContent-Disposition: form-data\r\n\r\nx\r\n",
        b"--batch-gateway-test-boundary\r\nno colon in this header\r\n\r\nx\r\n",
    ],
    ids=["unframed", "truncated", "nameless-part", "bad-header"],
)
def test_a_malformed_multipart_body_is_refused(http: httpx.Client, body: bytes) -> None:
    response = http.post("/v1/files", content=body, headers={"content-type": CONTENT_TYPE})

    error_of(response, 400)
    assert http.get("/v1/files").json()["data"] == []


@pytest.mark.parametrize("limit", ["0", "-1", "10001", "abc", ""])
def test_a_bad_list_limit_is_refused(http: httpx.Client, limit: str) -> None:
    error = error_of(http.get("/v1/files", params={"limit": limit}), 400)

    assert error["param"] == "limit"
    assert error["type"] == "invalid_request_error"


@pytest.mark.parametrize("limit", ["1", "10000"])
def test_list_limits_at_the_bounds_are_accepted(http: httpx.Client, limit: str) -> None:
    assert http.get("/v1/files", params={"limit": limit}).status_code == 200


@pytest.mark.parametrize("order", ["ascending", "DESC", ""])
def test_a_bad_list_order_is_refused(http: httpx.Client, order: str) -> None:
    assert error_of(http.get("/v1/files", params={"order": order}), 400)["param"] == "order"


def test_an_unknown_after_cursor_is_refused(http: httpx.Client) -> None:
    response = http.get("/v1/files", params={"after": "file-doesnotexist"})

    assert error_of(response, 400)["param"] == "after"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/v1/nothing-here", 404),
        ("GET", "/", 404),
        ("GET", "/v1/files/file-abc/content/more", 404),
        ("PUT", "/v1/files", 405),
        ("PATCH", "/v1/files/file-abc", 405),
    ],
)
def test_unknown_routes_answer_with_the_envelope(
    http: httpx.Client, method: str, path: str, status: int
) -> None:
    response = http.request(method, path)

    error_of(response, status)
    assert response.headers["x-request-id"].startswith("req_")


@pytest.mark.parametrize("file_id", ["file-doesnotexist", "not-a-file-id", "..", "%2e%2e%2fx"])
@pytest.mark.parametrize(("method", "suffix"), [("GET", ""), ("GET", "/content"), ("DELETE", "")])
def test_an_unknown_file_is_a_404(
    http: httpx.Client, method: str, suffix: str, file_id: str
) -> None:
    response = http.request(method, f"/v1/files/{file_id}{suffix}")

    error = error_of(response, 404)
    assert error["type"] == "invalid_request_error"


def test_every_response_carries_its_own_request_id(http: httpx.Client) -> None:
    created = post_fields(http, purpose="batch")
    file_id = created.json()["id"]
    responses = [
        created,
        http.get("/v1/files"),
        http.get(f"/v1/files/{file_id}"),
        http.get(f"/v1/files/{file_id}/content"),
        http.delete(f"/v1/files/{file_id}"),
        http.get(f"/v1/files/{file_id}"),
        http.get("/v1/files", params={"limit": "0"}),
        post_form(http, field_part("purpose", "batch")),
        http.get("/nowhere"),
        http.get("/health"),
        http.get("/ready"),
        http.get("/metrics"),
    ]

    ids = [response.headers.get("x-request-id") for response in responses]
    assert all(re.fullmatch(r"req_[0-9a-f]{32}", str(request_id)) for request_id in ids), ids
    assert len(set(ids)) == len(ids)
