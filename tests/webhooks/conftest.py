"""A real webhook receiver in-process, and webhook deliverers wired as the processor wires them."""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator
from typing import Any, Protocol

import msgspec
import pytest
import redis.asyncio as aioredis
from aiohttp import web

from batch_gateway.clock import system_clock
from batch_gateway.events import EventLog
from batch_gateway.processors.consumer_group import ConsumerGroup
from batch_gateway.processors.settings import ProcessorSettings
from batch_gateway.processors.webhooks.deliverer import GROUP, MAX_DELIVERIES, WebhookDeliverer

KEY = os.urandom(32)
SECRET = "whsec_" + base64.b64encode(KEY).decode()


class Received(msgspec.Struct, frozen=True):
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """Records every request; answers 500 to the first `fail_first` ones, then 200."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.fail_first = 0
        self.base_url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{path:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def url(self, path: str = "hook") -> str:
        return f"{self.base_url}/{path}"

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {name.lower(): value for name, value in request.headers.items()}
        self.requests.append(Received(request.match_info["path"], headers, body))
        if len(self.requests) <= self.fail_first:
            return web.Response(status=500)
        return web.Response(status=200)


class Crash(Exception):
    """The deliverer's process dies between the POST and the XACK."""


class CrashingGroup(ConsumerGroup):
    async def ack(self, *entry_ids: bytes) -> None:
        raise Crash


class MakeDeliverer(Protocol):
    def __call__(
        self, name: str = ..., *, lease_ms: int = ..., crash_before_ack: bool = ..., **settings: Any
    ) -> WebhookDeliverer: ...


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def make_deliverer(
    redis_client: aioredis.Redis, event_log: EventLog, receiver: Receiver
) -> AsyncIterator[MakeDeliverer]:
    made: list[WebhookDeliverer] = []

    def make(
        name: str = "deliverer-1",
        *,
        lease_ms: int = 30_000,
        crash_before_ack: bool = False,
        **settings: Any,
    ) -> WebhookDeliverer:
        group_class = CrashingGroup if crash_before_ack else ConsumerGroup
        group = group_class(
            redis_client,
            event_log.keys.global_stream,
            GROUP,
            name,
            lease_ms=lease_ms,
            max_deliveries=MAX_DELIVERIES,
            dead_letter_stream=f"{event_log.keys.tag}:dead-letter",
        )
        values: dict[str, Any] = {
            "webhook_urls": [receiver.url()],
            "webhook_secret": SECRET,
            "webhook_backoff_initial_seconds": 0.01,
            "webhook_backoff_max_seconds": 0.05,
            **settings,
        }
        deliverer = WebhookDeliverer(group, ProcessorSettings(name=name, **values), system_clock)
        made.append(deliverer)
        return deliverer

    yield make
    for deliverer in made:
        await deliverer.close()
