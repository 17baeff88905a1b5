"""Fixtures of the subscriber tests: a stack whose event streams keep alive often (so tests
see comments without waiting 15 s), and a stack that executes batches against a simulator
slow enough for progress to show, whose streams end every second (so every `tail` resumes)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from batch_gateway.gateway.settings import EventStreamSettings
from batch_gateway.simulator import SimulatorSettings
from batch_gateway.simulator.settings import ModelBehaviour
from tests.harness import executing_stacks
from tests.harness.live_stack import LiveStack, isolated_stack
from tests.subscribers.executing_stack import (
    API_KEY,
    CLI_TENANT,
    FAILING_MODEL,
    KEEP_ALIVE_SECONDS,
    ExecutingStack,
)


@pytest.fixture(scope="module")
def module_stack(
    redis_url: str, postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveStack]:
    """The folder's stack (validation only, as everywhere): frequent keep-alives."""
    with isolated_stack(
        redis_url,
        postgres_url,
        tmp_path_factory.mktemp("files"),
        event_stream=EventStreamSettings(keep_alive_seconds=KEEP_ALIVE_SECONDS),
    ) as stack:
        yield stack


@pytest.fixture(scope="module")
def executing_stack(
    redis_url: str, postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ExecutingStack]:
    """Executes batches: 0.1 s a request, 4 at a time; API keys give the tenant (standalone
    use, as the CLI has it); every event stream ends after a second."""
    simulator_settings = SimulatorSettings(
        port=0, latency_seconds=0.1, models={FAILING_MODEL: ModelBehaviour(rate_500=1.0)}
    )
    with executing_stacks.executing_stack(
        redis_url,
        postgres_url,
        tmp_path_factory.mktemp("files"),
        simulator_settings,
        api_keys={API_KEY: CLI_TENANT},
        event_stream=EventStreamSettings(
            keep_alive_seconds=KEEP_ALIVE_SECONDS, max_stream_seconds=1.0
        ),
    ) as stack:
        yield stack
