"""The API server, the projector and the processor running for real, in a background thread.

Tests talk to it over HTTP on a loopback port, with the official OpenAI SDK or httpx, as a
client would; the components are the same objects `batch-gateway apiserver`,
`batch-gateway projector` and `batch-gateway processor` run. `processor_overrides` changes the
processor's settings (its limits, say); `with_processor=False` leaves it out, for tests that
drive validation themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import msgspec
import redis.asyncio as aioredis
import uvicorn

from batch_gateway.clock import Clock, system_clock
from batch_gateway.gateway.app import create_app
from batch_gateway.gateway.settings import ApiServerSettings
from batch_gateway.processors.component import run_processor
from batch_gateway.processors.settings import ProcessorSettings
from batch_gateway.projections.component import run_projector
from batch_gateway.projections.database import drop_schema
from batch_gateway.projections.settings import ProjectorSettings
from batch_gateway.secret_store import new_secrets_key
from batch_gateway.settings import settings_for
from batch_gateway.storage import StorageSettings
from tests.harness.loop_thread import LoopThread

START_TIMEOUT_SECONDS = 30.0


class LiveStack(LoopThread):
    def __init__(
        self,
        settings: ApiServerSettings,
        clock: Clock = system_clock,
        *,
        processor_overrides: Mapping[str, Any] | None = None,
        with_processor: bool = True,
    ) -> None:
        super().__init__("live stack", START_TIMEOUT_SECONDS)
        # Bound here and handed to uvicorn: a port picked now and bound later could be taken
        # meanwhile (by any connection's ephemeral port), failing a test at random.
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self.settings = msgspec.structs.replace(settings, port=self._socket.getsockname()[1])
        self._clock = clock
        self._processor_overrides = dict(processor_overrides or {})
        self._with_processor = with_processor
        self._server: uvicorn.Server | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.port}"

    def __exit__(self, *exc_info: object) -> None:
        super().__exit__(*exc_info)
        self._socket.close()

    def _stopping(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        super()._stopping()

    async def _serve(self, stop: asyncio.Event) -> None:
        config = uvicorn.Config(
            create_app(self.settings, self._clock),
            host="127.0.0.1",
            port=self.settings.port,
            lifespan="on",
            log_config=None,
            access_log=False,
        )
        self._server = uvicorn.Server(config)
        # Port 0: the probe servers bind whatever is free (no test reads them here).
        projector_settings = settings_for(ProjectorSettings, self.settings, port=0)
        processor_settings = settings_for(
            ProcessorSettings,
            self.settings,
            # Validation only, unless a test asks for execution (and names a gateway for it):
            # most tests want a validated batch to stay `in_progress`, waiting for a processor.
            **(
                {"port": 0, "name": "live-stack", "roles": ["validate"]} | self._processor_overrides
            ),
        )
        serving = asyncio.create_task(self._server.serve(sockets=[self._socket]))
        tasks = [asyncio.create_task(run_projector(projector_settings, stop))]
        if self._with_processor:
            tasks.append(asyncio.create_task(run_processor(processor_settings, stop, self._clock)))
        while not self._server.started:
            if serving.done():
                await serving  # raises what stopped it
                raise RuntimeError("uvicorn exited before it started")
            await asyncio.sleep(0.01)
        for task in tasks:
            task.add_done_callback(_report_crash)
        self._ready()
        try:
            await serving
        finally:
            # The projector and the processor notice `stop` only between blocking reads of up
            # to a second; their work is transactional, so a test stack need not wait for that.
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


# Starts a LiveStack with some settings changed (the `start_stack` fixture of tests/conftest.py);
# `processor_overrides` and `with_processor` are passed to LiveStack, the rest replaces settings.
StartStack = Callable[..., LiveStack]


@contextlib.contextmanager
def isolated_stack(
    redis_url: str,
    postgres_url: str,
    files_root: Path,
    *,
    processor_overrides: Mapping[str, Any] | None = None,
    with_processor: bool = True,
    **changes: Any,
) -> Iterator[LiveStack]:
    """A stack on a Redis prefix and a schema of its own, both removed when it stops."""
    settings = ApiServerSettings(
        redis_url=redis_url,
        postgres_url=postgres_url,
        postgres_schema=f"t_{uuid.uuid4().hex[:16]}",
        key_prefix=f"test-{uuid.uuid4().hex[:12]}",
        storage=StorageSettings(kind="filesystem", fs_root=str(files_root)),
        secrets_key=new_secrets_key(),
    )
    settings = msgspec.structs.replace(settings, **changes)
    try:
        with LiveStack(
            settings, processor_overrides=processor_overrides, with_processor=with_processor
        ) as stack:
            yield stack
    finally:
        asyncio.run(_remove_namespace(settings))


async def _remove_namespace(settings: ApiServerSettings) -> None:
    await drop_schema(settings.postgres_url, settings.postgres_schema)
    client = aioredis.Redis.from_url(settings.redis_url)
    try:
        pattern = f"{{{settings.key_prefix}}}*"
        keys = [key async for key in client.scan_iter(match=pattern, count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


def _report_crash(task: asyncio.Task[None]) -> None:
    """A component that dies in a test stack says why, instead of leaving the test to time out."""
    if not task.cancelled() and task.exception() is not None:
        logging.getLogger(__name__).error("%s crashed", task.get_name(), exc_info=task.exception())
