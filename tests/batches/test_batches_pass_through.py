"""Pass-through headers: captured at create for the processors, sealed in the secret store, and
nowhere else: not in the event log, the projection, API responses or logs; gone once the
batch ends; unreadable for another tenant."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from openai import OpenAI

from batch_gateway.events.batch_events import BatchCreated
from batch_gateway.gateway.settings import ApiServerSettings
from batch_gateway.projections.database import connect
from tests.harness.batch_helpers import CHAT, chat_file, jsonl, upload, wait_until_status
from tests.harness.live_stack import LiveStack, StartStack
from tests.harness.stack_internals import StackInternals, stack_internals

SECRET_WAIT_SECONDS = 5.0


@pytest.fixture
def secret() -> str:
    return f"sk-secret-{uuid.uuid4().hex}"


@pytest.fixture
async def passing(
    module_stack: LiveStack, tenant: str, secret: str
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the tenant that sends `Authorization: Bearer <secret>` with every call."""
    headers = {
        module_stack.settings.tenant_header: tenant,
        "Authorization": f"Bearer {secret}",
        "X-Not-Passed-Through": secret,
    }
    async with httpx.AsyncClient(base_url=module_stack.base_url, headers=headers) as http:
        yield http


async def _create(http: httpx.AsyncClient, input_file: str) -> httpx.Response:
    body = {"input_file_id": input_file, "endpoint": CHAT, "completion_window": "24h"}
    response = await http.post("/v1/batches", json=body)
    assert response.status_code == 200, response.text
    return response


async def _projection_text(settings: ApiServerSettings) -> str:
    async with await connect(settings.postgres_url, settings.postgres_schema) as conn:
        cursor = await conn.execute("SELECT * FROM batches")
        return repr(await cursor.fetchall())


async def _forgotten(internals: StackInternals, batch_id: str, tenant: str) -> bool:
    """Whether the sealed headers are gone, waiting a little: a batch's end is visible a moment
    before its ender has deleted them."""
    deadline = time.monotonic() + SECRET_WAIT_SECONDS
    while await internals.secrets.get(batch_id, tenant):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


async def test_the_header_is_sealed_for_the_batch_and_nowhere_else(
    module_stack: LiveStack,
    client: OpenAI,
    passing: httpx.AsyncClient,
    internals: StackInternals,
    tenant: str,
    secret: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    created = await _create(passing, upload(client, chat_file()))
    batch_id = created.json()["id"]
    assert await internals.secrets.get(batch_id, tenant) == {"authorization": f"Bearer {secret}"}
    events = await internals.batch_events(batch_id)
    assert isinstance(events[0], BatchCreated)
    assert events[0].pass_through_headers == ["authorization"]

    judged = wait_until_status(client, batch_id, {"in_progress"})
    # Validated, the batch waits for a processor, which needs the header.
    assert await internals.secrets.get(batch_id, tenant) == {"authorization": f"Bearer {secret}"}
    answers = [
        created.text,
        (await passing.get(f"/v1/batches/{batch_id}")).text,
        (await passing.get("/v1/batches")).text,
        judged.model_dump_json(),
        (await passing.post(f"/v1/batches/{batch_id}/cancel")).text,
    ]
    assert all(batch_id in answer and secret not in answer for answer in answers)
    raw_log = await internals.raw_global_stream()
    assert batch_id.encode() in raw_log
    assert secret.encode() not in raw_log
    projection = await _projection_text(module_stack.settings)
    assert batch_id in projection
    assert secret not in projection
    assert batch_id in caplog.text  # the logs were captured (the validator names the batch)
    assert secret not in caplog.text


async def test_another_tenant_cannot_open_the_sealed_header(
    client: OpenAI, passing: httpx.AsyncClient, internals: StackInternals, tenant: str
) -> None:
    batch_id = (await _create(passing, upload(client, chat_file()))).json()["id"]
    assert await internals.secrets.get(batch_id, tenant)
    assert await internals.secrets.get(batch_id, f"{tenant}-other") == {}
    assert await internals.secrets.get("batch_" + "0" * 32, tenant) == {}


async def test_the_header_is_deleted_when_the_batch_is_cancelled(
    client: OpenAI, passing: httpx.AsyncClient, internals: StackInternals, tenant: str
) -> None:
    batch_id = (await _create(passing, upload(client, chat_file()))).json()["id"]
    assert await internals.secrets.get(batch_id, tenant)
    cancelled = await passing.post(f"/v1/batches/{batch_id}/cancel")
    assert cancelled.json()["status"] == "cancelled"
    assert await internals.secrets.get(batch_id, tenant) == {}


async def test_the_header_is_deleted_when_validation_fails(
    client: OpenAI, passing: httpx.AsyncClient, internals: StackInternals, tenant: str
) -> None:
    batch_id = (await _create(passing, upload(client, jsonl([{"custom_id": "a"}])))).json()["id"]
    assert wait_until_status(client, batch_id, {"failed", "in_progress"}).status == "failed"
    assert await _forgotten(internals, batch_id, tenant)


async def test_nothing_is_sealed_without_the_header(
    module_stack: LiveStack, client: OpenAI, internals: StackInternals, tenant: str
) -> None:
    # The SDK always sends an Authorization header; a raw client need not.
    headers = {module_stack.settings.tenant_header: tenant}
    async with httpx.AsyncClient(base_url=module_stack.base_url, headers=headers) as http:
        batch_id = (await _create(http, upload(client, chat_file()))).json()["id"]
    assert await internals.secrets.get(batch_id, tenant) == {}
    events = await internals.batch_events(batch_id)
    assert isinstance(events[0], BatchCreated)
    assert events[0].pass_through_headers == []


async def test_the_gateways_own_api_key_is_never_captured(
    start_stack: StartStack, client: OpenAI
) -> None:
    # With the gateway's API keys on, Authorization carries the key to this gateway: it must
    # not be forwarded to inference servers.
    stack = start_stack(api_keys={"sk-gateway-key": "alice"})
    keyed = OpenAI(
        base_url=f"{stack.base_url}/v1", api_key="sk-gateway-key", _strict_response_validation=True
    )
    batch = keyed.batches.create(
        input_file_id=upload(keyed, chat_file()), endpoint=CHAT, completion_window="24h"
    )
    async with stack_internals(stack.settings) as inside:
        assert await inside.secrets.get(batch.id, "alice") == {}
        events = await inside.batch_events(batch.id)
    assert isinstance(events[0], BatchCreated)
    assert events[0].pass_through_headers == []
