"""Hostile filenames: refused with a clear 400, or kept as a harmless basename. Either way the
name never reaches a storage key, and the download's content-disposition stays well-formed."""

from __future__ import annotations

import re
from urllib.parse import unquote

import httpx
import pytest
from openai import OpenAI

from tests.harness.live_stack import LiveStack
from tests.harness.multipart_forms import CONTENT_TYPE, field_part, file_part, form_body
from tests.harness.openai_errors import error_of
from tests.harness.stored_files import stored_files

MAX_FILENAME = 512

# Raw filename as the client puts it in the part header -> the name kept (None: a 400).
HOSTILE_NAMES: dict[str, str | None] = {
    "../../etc/passwd": "passwd",
    "/abs/path.jsonl": "path.jsonl",
    "a\\b.jsonl": "b.jsonl",
    "C:\\Users\\me\\in.jsonl": "in.jsonl",
    "..\\..\\windows\\win.ini": "win.ini",
    "dir/../../x.jsonl": "x.jsonl",
    "données-日本語-🚀.jsonl": "données-日本語-🚀.jsonl",
    "a%2F..%2Fb.jsonl": "a%2F..%2Fb.jsonl",
    "x" * MAX_FILENAME: "x" * MAX_FILENAME,
    "in\x00.jsonl": None,
    "tab\there.jsonl": None,
    "\x1b[31mred.jsonl": None,
    "\x7fdel.jsonl": None,
    "\u202egnp.exe": None,
    "line\u2028sep.jsonl": None,
    "evil\r\nContent-Type: text/html": None,
    "x" * (MAX_FILENAME + 1): None,
    "x" * 5000: None,
    "..": None,
    ".": None,
    "   ": None,
    "": None,
    "dir/": None,
}
IDS = [repr(name[:24]) + (f"x{len(name)}" if len(name) > 24 else "") for name in HOSTILE_NAMES]

STORAGE_KEY = re.compile(r"files/[0-9a-f]{32}/file-[A-Za-z0-9]+")


def upload_named(http: httpx.Client, filename: str) -> httpx.Response:
    body = form_body([field_part("purpose", "user_data"), file_part(b"{}\n", filename)])
    return http.post("/v1/files", content=body, headers={"content-type": CONTENT_TYPE})


def assert_harmless(name: str) -> None:
    assert name
    assert name not in (".", "..")
    assert "/" not in name
    assert "\\" not in name
    assert name.isprintable()
    assert len(name) <= MAX_FILENAME


@pytest.mark.parametrize(("raw", "kept"), HOSTILE_NAMES.items(), ids=IDS)
def test_a_hostile_filename_is_refused_or_made_harmless(
    module_stack: LiveStack, http: httpx.Client, raw: str, kept: str | None
) -> None:
    response = upload_named(http, raw)

    if kept is None:
        error = error_of(response, 400)
        assert error["param"] == "file"
        assert http.get("/v1/files").json()["data"] == []
        return
    assert response.status_code == 200, response.text
    created = response.json()
    assert created["filename"] == kept
    assert_harmless(created["filename"])
    assert http.get(f"/v1/files/{created['id']}").json()["filename"] == kept
    for key in stored_files(module_stack.settings):
        assert STORAGE_KEY.fullmatch(key), key


@pytest.mark.parametrize(
    "name",
    ["../../etc/passwd", "a\\b.jsonl", "in\x00.jsonl", 'q";x=1.jsonl', "données-🚀.jsonl"],
)
def test_whatever_the_sdk_sends_comes_back_harmless(client: OpenAI, name: str) -> None:
    # httpx escapes quotes, backslashes and control characters in the part header itself.
    created = client.files.create(file=(name, b"{}\n"), purpose="user_data")

    assert_harmless(created.filename)
    assert client.files.retrieve(created.id).filename == created.filename


@pytest.mark.parametrize(
    "name",
    ["données-日本語-🚀.jsonl", "a%2F..%2Fb.jsonl", "semi;colon, comma.jsonl", "q'uote.jsonl"],
)
def test_content_disposition_is_ascii_and_decodes_to_the_filename(
    http: httpx.Client, name: str
) -> None:
    created = upload_named(http, name).json()

    response = http.get(f"/v1/files/{created['id']}/content")

    assert response.status_code == 200
    disposition = response.headers["content-disposition"]
    assert disposition.isascii()
    assert disposition.isprintable()
    # RFC 8187 ext-value: attr-chars and %XX escapes only (no quotes, spaces, ; or /).
    match = re.fullmatch(r"attachment; filename\*=UTF-8''([A-Za-z0-9!#$&+.^_`|~%-]+)", disposition)
    assert match is not None, disposition
    assert unquote(match.group(1)) == created["filename"]


def test_the_storage_tree_holds_ids_only(
    module_stack: LiveStack, client: OpenAI, tenant: str
) -> None:
    names = ["../../../../tmp/escape.jsonl", "/etc/cron.d/job", "passwd", "nested/dir/f.jsonl"]
    created = [client.files.create(file=(name, b"{}\n"), purpose="batch") for name in names]

    keys = stored_files(module_stack.settings)

    assert all(STORAGE_KEY.fullmatch(key) for key in keys), keys
    mine = {key.rsplit("/", 1)[1] for key in keys}
    assert {file.id for file in created} <= mine
    assert not any(part in key for key in keys for part in ("escape", "cron", "passwd", "nested"))
    assert tenant not in "".join(keys)
