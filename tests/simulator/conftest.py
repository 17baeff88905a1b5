"""Simulators started in the test's own event loop, on free ports, and a client session.

Every test starts the simulators it needs with the settings it needs (a start takes a few
milliseconds) and talks to them over real HTTP."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any, Protocol

import aiohttp
import pytest

from batch_gateway.simulator import RunningSimulator, SimulatorSettings, running_simulator

CHAT = "/v1/chat/completions"


def chat_body(content: str = "Say hello to the batch gateway", **extra: Any) -> dict[str, Any]:
    return {"model": "sim-model", "messages": [{"role": "user", "content": content}], **extra}


class StartSimulator(Protocol):
    async def __call__(self, **settings: Any) -> RunningSimulator: ...


@pytest.fixture
async def start_simulator() -> AsyncIterator[StartSimulator]:
    async with contextlib.AsyncExitStack() as stack:

        async def start(**settings: Any) -> RunningSimulator:
            values: dict[str, Any] = {"port": 0, **settings}
            return await stack.enter_async_context(running_simulator(SimulatorSettings(**values)))

        yield start


@pytest.fixture
async def simulator(start_simulator: StartSimulator) -> RunningSimulator:
    return await start_simulator()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


async def post(
    http: aiohttp.ClientSession,
    simulator: RunningSimulator,
    path: str,
    body: Any,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """POST a JSON body; returns the status and the decoded JSON answer."""
    async with http.post(simulator.url + path, json=body, headers=headers) as response:
        return response.status, await response.json()
