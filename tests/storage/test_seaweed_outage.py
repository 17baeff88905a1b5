"""The S3 plug-in against a real S3 server (SeaweedFS) that goes down and comes back: while it
is down every operation raises `StorageUnavailable` within seconds (the outage the processors
back off from, never a crash), and afterwards everything stored before is there. A frozen
server is another outage: its connections are accepted and never answered, so operations wait
on the client's timeouts (30 s a read, retried twice) rather than failing fast."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import pytest

from batch_gateway.storage import ObjectStorage, StorageUnavailable, open_storage
from tests.harness.seaweed_server import SeaweedS3, seaweed_s3


@pytest.fixture
def server(tmp_path: Path) -> Iterator[SeaweedS3]:
    with seaweed_s3(tmp_path / "seaweed") as started:
        yield started


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _read(storage: ObjectStorage, key: str) -> bytes:
    reader = await storage.read(key)
    async with reader:
        return b"".join([chunk async for chunk in reader])


async def test_an_outage_is_storage_unavailable_and_a_restart_keeps_every_object(
    server: SeaweedS3,
) -> None:
    storage = await open_storage(server.storage_settings())
    try:
        await storage.write("files/t/before", _chunks(b"kept"))

        server.kill()
        started = time.monotonic()
        with pytest.raises(StorageUnavailable):
            await storage.write("files/t/during", _chunks(b"lost"))
        with pytest.raises(StorageUnavailable):
            await _read(storage, "files/t/before")
        with pytest.raises(StorageUnavailable):
            await storage.check()
        assert time.monotonic() - started < 10, "refused connections fail fast"

        server.start()
        assert await _read(storage, "files/t/before") == b"kept"
        await storage.write("files/t/after", _chunks(b"new"))
        assert await _read(storage, "files/t/after") == b"new"
        assert not await storage.exists("files/t/during")
    finally:
        await storage.close()


async def test_a_paused_server_holds_operations_until_it_resumes(server: SeaweedS3) -> None:
    """Operations wait on a frozen server, up to the plug-in's timeouts (about a minute and a half:
    three reads of 30 s each), and complete once it continues."""
    storage = await open_storage(server.storage_settings())
    try:
        await storage.write("files/t/before", _chunks(b"kept"))
        finished: dict[str, bytes] = {}

        async def read_back() -> None:
            finished["read"] = await _read(storage, "files/t/before")

        async def write() -> None:
            await storage.write("files/t/during", _chunks(b"queued"))
            finished["write"] = b"queued"

        server.pause()
        async with anyio.create_task_group() as task_group:
            try:
                task_group.start_soon(read_back)
                task_group.start_soon(write)
                await anyio.sleep(1.5)
                assert finished == {}, "a frozen server does not refuse: requests wait on it"
            finally:
                server.resume()  # the threads behind both operations cannot be cancelled

        assert finished == {"read": b"kept", "write": b"queued"}
        assert await _read(storage, "files/t/during") == b"queued"
    finally:
        await storage.close()
