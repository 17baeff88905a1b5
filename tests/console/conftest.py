"""Fixtures of the console tests: a stack that executes batches slowly enough to watch,
behind a proxy that mounts it under a path prefix, and a headless Chromium."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from batch_gateway.gateway.settings import EventStreamSettings
from batch_gateway.simulator import SimulatorSettings
from batch_gateway.simulator.settings import ModelBehaviour
from tests.harness.browser import headless_chromium
from tests.harness.executing_stacks import executing_stack
from tests.harness.live_stack import LiveStack, isolated_stack
from tests.harness.prefix_proxy import PrefixProxy

PREFIX = "/batch-gateway"
# The header the auth proxy in front sets (tests/harness/prefix_proxy.py plays that proxy).
TENANT_HEADER = "X-MaaS-Username"
FAILING_MODEL = "always-500"


@pytest.fixture(scope="package")
def console_stack(
    redis_url: str, postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveStack]:
    """Executes batches at 0.05 s a request, 4 at a time, committing five times a second;
    tenants come from the tenant header, as behind llm-d's auth proxy."""
    simulator_settings = SimulatorSettings(
        port=0,
        latency_seconds=0.05,
        models={FAILING_MODEL: ModelBehaviour(rate_500=1.0)},
    )
    with executing_stack(
        redis_url,
        postgres_url,
        tmp_path_factory.mktemp("files"),
        simulator_settings,
        event_stream=EventStreamSettings(keep_alive_seconds=1.0),
    ) as running:
        yield running.stack


@pytest.fixture(scope="package")
def prefixed(console_stack: LiveStack) -> Iterator[str]:
    """The stack's root under PREFIX, through a proxy that strips it (an HTTPRoute rewrite)
    and sets the tenant header from the browser's session cookie (the auth proxy)."""
    with PrefixProxy(console_stack.base_url, PREFIX, TENANT_HEADER) as proxy:
        yield proxy.url


@pytest.fixture(scope="module")
def browser(console_stack: LiveStack) -> Iterator[Browser]:
    # Playwright's sync API runs an event loop in this thread while the browser is open: the
    # stack's clean-up and other modules' asyncio fixtures need the thread free of one, so the
    # browser opens after the stack, and closes with the module that drives it.
    with headless_chromium() as chromium:
        yield chromium


KEYS = {"sk-console-browser-0001": "keyed"}


@pytest.fixture(scope="package")
def keyed_stack(
    redis_url: str, postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveStack]:
    """A standalone stack that asks for API keys (validation only: batches stay validating)."""
    with isolated_stack(
        redis_url,
        postgres_url,
        tmp_path_factory.mktemp("files"),
        with_processor=False,
        api_keys=KEYS,
    ) as stack:
        yield stack
