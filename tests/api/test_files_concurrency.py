"""Concurrent writers: every upload lands once, and of racing deletes exactly one wins."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.harness.live_stack import LiveStack


@pytest.fixture
async def client(module_stack: LiveStack, tenant: str) -> AsyncIterator[httpx.AsyncClient]:
    headers = {module_stack.settings.tenant_header: tenant}
    async with httpx.AsyncClient(base_url=module_stack.base_url, headers=headers) as client:
        yield client


async def upload(client: httpx.AsyncClient, index: int) -> str:
    response = await client.post(
        "/v1/files",
        data={"purpose": "batch"},
        files={"file": (f"{index}.jsonl", b'{"n": %d}\n' % index)},
    )
    assert response.status_code == 200, response.text
    file_id: str = response.json()["id"]
    return file_id


async def test_concurrent_uploads_all_land(client: httpx.AsyncClient) -> None:
    ids = await asyncio.gather(*(upload(client, index) for index in range(20)))

    listed = (await client.get("/v1/files", params={"order": "asc"})).json()["data"]

    assert len(set(ids)) == 20
    assert sorted(file["id"] for file in listed) == sorted(ids)
    for index, file_id in enumerate(ids):
        content = await client.get(f"/v1/files/{file_id}/content")
        assert content.content == b'{"n": %d}\n' % index


async def test_of_racing_deletes_exactly_one_wins(client: httpx.AsyncClient) -> None:
    file_id = await upload(client, 0)

    responses = await asyncio.gather(*(client.delete(f"/v1/files/{file_id}") for _ in range(8)))

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] + [404] * 7
    assert (await client.get("/v1/files")).json()["data"] == []
    assert (await client.get(f"/v1/files/{file_id}/content")).status_code == 404
