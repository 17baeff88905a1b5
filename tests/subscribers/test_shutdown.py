"""`batch-gateway apiserver` ends its event streams as soon as it is asked to stop, instead of
holding its graceful shutdown open for them (their clients resume elsewhere)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import msgspec

from batch_gateway.events import EventLog
from batch_gateway.events.batch_events import BatchCreated
from batch_gateway.gateway.settings import ApiServerSettings
from batch_gateway.gateway.tenancy import DEFAULT_TENANT
from batch_gateway.ids import new_batch_id
from batch_gateway.settings import to_environment
from batch_gateway.stack.components import Component
from batch_gateway.stack.redis_server import free_port


async def test_sigterm_ends_open_streams_at_once(
    api_settings: ApiServerSettings, event_log: EventLog, tmp_path: Path
) -> None:
    batch_id = new_batch_id()
    created = BatchCreated(
        input_file_id="file-" + "0" * 24, endpoint="/v1/chat/completions",
        completion_window="24h", created_at=1, expires_at=2,
    )  # fmt: skip
    await event_log.append(batch_id, DEFAULT_TENANT, 0, [created])
    server = Component("apiserver", "127.0.0.1", free_port(), tmp_path / "apiserver.log")
    settings = msgspec.structs.replace(api_settings, port=server.port)
    server.start(to_environment(settings))
    try:
        server.wait_until_ready()
        assert server.process is not None
        async with (
            httpx.AsyncClient(base_url=server.probe_url) as http,
            http.stream("GET", f"/v1/batches/{batch_id}/events", timeout=10) as response,
        ):
            lines = response.aiter_lines()
            assert (await anext(lines)).startswith("id: ")
            stopping = time.monotonic()
            server.process.terminate()
            rest = [line async for line in lines]  # ends when the server ends the stream
        # uvicorn re-raises the SIGTERM it handled once it has shut down cleanly.
        assert server.process.wait(timeout=10) in (0, -15)
        # Well within uvicorn's 30 s of graceful shutdown: the stream did not hold it open.
        assert time.monotonic() - stopping < 5
        assert [line for line in rest if line.startswith("id: ")] == []
    finally:
        if server.process is not None and server.process.poll() is None:
            server.process.kill()
            server.process.wait()
