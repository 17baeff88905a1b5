"""Batch input files and batches put in place the way the API server would, for validator tests."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from typing import Any

from batch_gateway.events import EventLog, FileUploaded
from batch_gateway.events.batch_events import BatchCreated
from batch_gateway.ids import new_batch_id, new_file_id
from batch_gateway.storage import ObjectStorage, file_object_key

TENANT = "acme"
CHAT = "/v1/chat/completions"
CREATED_AT = 1_700_000_000
WINDOW_SECONDS = 86_400
EXPIRES_AT = CREATED_AT + WINDOW_SECONDS


def request_line(
    custom_id: str, *, model: str | None = "m1", url: str = CHAT, **body: Any
) -> dict[str, Any]:
    if model is not None:
        body["model"] = model
    body.setdefault("messages", [{"role": "user", "content": f"hello {custom_id}"}])
    return {"custom_id": custom_id, "method": "POST", "url": url, "body": body}


def jsonl(lines: Iterable[dict[str, Any] | str]) -> bytes:
    """One line per item: dicts as JSON, strings as they are (for broken lines)."""
    return b"".join(
        (line if isinstance(line, str) else json.dumps(line)).encode() + b"\n" for line in lines
    )


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def upload_input(
    log: EventLog, storage: ObjectStorage, data: bytes, *, tenant: str = TENANT
) -> str:
    """Store the bytes of a new batch input file and append its upload; returns its id."""
    file_id = new_file_id()
    key = file_object_key(tenant, file_id)
    await storage.write(key, _once(data))
    uploaded = FileUploaded(
        filename="input.jsonl",
        purpose="batch",
        bytes=len(data),
        created_at=CREATED_AT,
        expires_at=None,
        storage_key=key,
        line_count=data.count(b"\n"),
    )
    await log.append(file_id, tenant, 0, [uploaded])
    return file_id


async def create_batch(
    log: EventLog,
    input_file_id: str,
    *,
    tenant: str = TENANT,
    endpoint: str = CHAT,
    metadata: dict[str, str] | None = None,
) -> str:
    """Append the `batch.created` of a new batch; returns its id."""
    batch_id = new_batch_id()
    created = BatchCreated(
        input_file_id=input_file_id,
        endpoint=endpoint,
        completion_window="24h",
        created_at=CREATED_AT,
        expires_at=EXPIRES_AT,
        metadata=metadata,
        pass_through_headers=["authorization"],
    )
    await log.append(batch_id, tenant, 0, [created])
    return batch_id
