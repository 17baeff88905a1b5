"""The Files API through the official OpenAI SDK in strict response validation mode."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import openai
import pytest
from openai import OpenAI

THIRTY_DAYS = 30 * 24 * 3600
LINES = b'{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {}}\n'


def upload(client: OpenAI, name: str, purpose: str = "batch") -> str:
    created = client.files.create(file=(name, LINES), purpose=purpose)  # type: ignore[arg-type]
    return created.id


def test_upload_from_a_path_returns_a_processed_file_object(client: OpenAI, tmp_path: Path) -> None:
    path = tmp_path / "requests.jsonl"
    path.write_bytes(LINES * 3)
    before = int(time.time())

    created = client.files.create(file=path, purpose="batch")

    assert created.id.startswith("file-")
    assert created.object == "file"
    assert created.bytes == len(LINES) * 3
    assert created.filename == "requests.jsonl"
    assert created.purpose == "batch"
    assert created.status == "processed"
    assert created.status_details is None
    assert before <= created.created_at <= int(time.time())


def test_batch_files_expire_after_thirty_days_by_default(client: OpenAI) -> None:
    created = client.files.create(file=("in.jsonl", LINES), purpose="batch")

    assert created.expires_at == created.created_at + THIRTY_DAYS


@pytest.mark.parametrize("purpose", ["assistants", "fine-tune", "vision", "user_data"])
def test_other_purposes_never_expire_by_default(client: OpenAI, purpose: str) -> None:
    created = client.files.create(file=("data.jsonl", LINES), purpose=purpose)  # type: ignore[arg-type]

    assert created.purpose == purpose
    assert created.expires_at is None
    assert client.files.retrieve(created.id).expires_at is None


@pytest.mark.parametrize("purpose", ["batch", "user_data"])
def test_an_explicit_expiry_is_counted_from_creation(client: OpenAI, purpose: str) -> None:
    created = client.files.create(
        file=("in.jsonl", LINES),
        purpose=purpose,  # type: ignore[arg-type]
        expires_after={"anchor": "created_at", "seconds": 7200},
    )

    assert created.expires_at == created.created_at + 7200
    assert client.files.retrieve(created.id).expires_at == created.expires_at


def test_retrieve_returns_what_the_upload_returned(client: OpenAI) -> None:
    created = client.files.create(file=("in.jsonl", LINES), purpose="batch")

    assert client.files.retrieve(created.id) == created


def test_content_downloads_the_exact_bytes(client: OpenAI) -> None:
    data = bytes(range(256)) * 64 + b"\r\n\x00 no trailing newline"
    created = client.files.create(file=("blob.bin", data), purpose="user_data")

    assert client.files.content(created.id).content == data


def test_wait_for_processing_returns_at_once(client: OpenAI) -> None:
    created = client.files.create(file=("in.jsonl", LINES), purpose="batch")
    started = time.monotonic()

    waited = client.files.wait_for_processing(created.id, poll_interval=30, max_wait_seconds=60)

    assert waited.status == "processed"
    assert time.monotonic() - started < 5


def test_a_deleted_file_is_gone_everywhere(client: OpenAI) -> None:
    kept = upload(client, "kept.jsonl")
    deleted = upload(client, "deleted.jsonl")

    result = client.files.delete(deleted)

    assert (result.id, result.object, result.deleted) == (deleted, "file", True)
    assert [f.id for f in client.files.list()] == [kept]
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(deleted)
    with pytest.raises(openai.NotFoundError):
        client.files.content(deleted)
    with pytest.raises(openai.NotFoundError):
        client.files.delete(deleted)


def test_the_list_reflects_each_write_at_once(client: OpenAI) -> None:
    ids: list[str] = []
    for index in range(5):
        ids.append(upload(client, f"{index}.jsonl"))
        assert [f.id for f in client.files.list(order="asc")] == ids
    while ids:
        client.files.delete(ids.pop(0))
        assert [f.id for f in client.files.list(order="asc")] == ids


def test_auto_pagination_walks_every_file_in_pages(client: OpenAI, http: httpx.Client) -> None:
    ids = [upload(client, f"{index:02}.jsonl") for index in range(25)]

    first_page = client.files.list(limit=10)
    assert [f.id for f in first_page.data] == ids[::-1][:10]
    assert first_page.has_more is True
    assert [f.id for f in client.files.list(limit=10)] == ids[::-1]
    assert [f.id for f in client.files.list(limit=10, order="asc")] == ids

    pages = [
        http.get("/v1/files", params={"limit": 10, "order": "asc", **after}).json()
        for after in ({}, {"after": ids[9]}, {"after": ids[19]})
    ]
    assert [page["object"] for page in pages] == ["list"] * 3
    assert [page["has_more"] for page in pages] == [True, True, False]
    assert [(page["first_id"], page["last_id"]) for page in pages] == [
        (ids[0], ids[9]),
        (ids[10], ids[19]),
        (ids[20], ids[24]),
    ]
    assert [len(page["data"]) for page in pages] == [10, 10, 5]


def test_a_page_that_ends_exactly_at_the_last_file_has_no_more(
    client: OpenAI, http: httpx.Client
) -> None:
    ids = [upload(client, f"{index}.jsonl") for index in range(3)]

    body = http.get("/v1/files", params={"limit": 3, "order": "asc"}).json()

    assert (body["first_id"], body["last_id"], body["has_more"]) == (ids[0], ids[2], False)


def test_an_empty_list_has_no_ids(client: OpenAI, http: httpx.Client) -> None:
    assert list(client.files.list()) == []
    assert http.get("/v1/files").json() == {
        "object": "list",
        "data": [],
        "first_id": None,
        "last_id": None,
        "has_more": False,
    }


def test_list_filters_by_purpose(client: OpenAI) -> None:
    batch = [upload(client, f"b{index}.jsonl", "batch") for index in range(3)]
    user_data = [upload(client, f"u{index}.jsonl", "user_data") for index in range(2)]

    assert [f.id for f in client.files.list(purpose="batch", order="asc")] == batch
    assert [f.id for f in client.files.list(purpose="user_data", order="asc")] == user_data
    assert list(client.files.list(purpose="vision")) == []


def test_after_is_a_cursor_in_either_order(client: OpenAI) -> None:
    ids = [upload(client, f"{index}.jsonl") for index in range(8)]

    ascending = client.files.list(after=ids[2], limit=3, order="asc")
    descending = client.files.list(after=ids[5], limit=3, order="desc")

    assert [f.id for f in ascending.data] == ids[3:6]
    assert [f.id for f in descending.data] == [ids[4], ids[3], ids[2]]
    assert list(client.files.list(after=ids[-1], order="asc")) == []


def test_a_cursor_at_a_deleted_file_still_pages_on(client: OpenAI) -> None:
    ids = [upload(client, f"{index}.jsonl") for index in range(5)]
    client.files.delete(ids[2])

    page = client.files.list(after=ids[2], order="asc")

    assert [f.id for f in page.data] == ids[3:]
