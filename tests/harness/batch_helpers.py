"""Batch input files, batches created through the SDK, and waiting for the validating phase."""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Iterable
from typing import Any, Final

from openai import OpenAI
from openai.types import Batch, FilePurpose

CHAT: Final = "/v1/chat/completions"
# How long the live stack's validator may take to judge a small batch.
VALIDATION_TIMEOUT_SECONDS = 10.0
_POLL_SECONDS = 0.02


def chat_line(custom_id: str, model: str = "m1", **extra: Any) -> dict[str, Any]:
    """One valid request line of a `/v1/chat/completions` batch."""
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    return {"custom_id": custom_id, "method": "POST", "url": CHAT, "body": body} | extra


def jsonl(lines: Iterable[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def chat_file(count: int = 3, model: str = "m1") -> bytes:
    return jsonl(chat_line(f"r{i}", model) for i in range(count))


def upload(client: OpenAI, content: bytes, purpose: FilePurpose = "batch") -> str:
    """Upload `content` as a file and return its id."""
    return client.files.create(file=("input.jsonl", content), purpose=purpose).id


def create_batch(client: OpenAI, content: bytes | None = None, **params: Any) -> Batch:
    """Upload `content` (three valid chat lines by default) and start a chat batch on it."""
    file_id = upload(client, chat_file() if content is None else content)
    return client.batches.create(
        input_file_id=file_id, endpoint=CHAT, completion_window="24h", **params
    )


def wait_until_status(
    client: OpenAI,
    batch_id: str,
    statuses: Collection[str],
    timeout: float = VALIDATION_TIMEOUT_SECONDS,
) -> Batch:
    """Retrieve the batch until its status is one of `statuses`; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        batch = client.batches.retrieve(batch_id)
        if batch.status in statuses:
            return batch
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{batch_id} is still {batch.status!r} after {timeout}s, not one of {statuses}"
            )
        time.sleep(_POLL_SECONDS)


def validated(client: OpenAI, content: bytes | None = None, **params: Any) -> Batch:
    """A batch the validator has judged (in progress, or failed for a bad file)."""
    batch = create_batch(client, content, **params)
    return wait_until_status(client, batch.id, {"in_progress", "failed"})


def line_errors(batch: Batch) -> list[tuple[str, int | None, str | None]]:
    """(code, line, param) of every validation error of a failed batch."""
    assert batch.status == "failed", batch
    assert batch.errors is not None
    assert batch.errors.object == "list"
    assert batch.errors.data is not None
    return [(error.code or "", error.line, error.param) for error in batch.errors.data]
