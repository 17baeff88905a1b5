"""Fixtures of the Node SDK test: the Node project installed once per session, and a stack
that executes batches against a simulator with one fast model and one too slow to finish, so
that a batch of the slow one is still running when the script cancels it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from batch_gateway.simulator import SimulatorSettings
from batch_gateway.simulator.settings import ModelBehaviour
from tests.harness.executing_stacks import ExecutingStack, executing_stack
from tests.sdk_node.node_project import NodeProject, installed_project

API_KEY = "sk-node-sdk-test-key"
TENANT = "node-sdk-tenant"
FAST_MODEL = "sim-model"
# Each request takes longer than the whole test: its batch only ends by being cancelled.
SLOW_MODEL = "slow-model"
SLOW_SECONDS = 60.0


@pytest.fixture(scope="session")
def node_project() -> NodeProject:
    return installed_project()


@pytest.fixture(scope="module")
def node_sdk_stack(
    redis_url: str, postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ExecutingStack]:
    """Validates and executes, 4 requests at a time; the API key gives the tenant, as a user
    of the SDK would have it (no tenant header)."""
    simulator_settings = SimulatorSettings(
        port=0,
        latency_seconds=0.02,
        models={SLOW_MODEL: ModelBehaviour(latency_seconds=SLOW_SECONDS)},
    )
    with executing_stack(
        redis_url,
        postgres_url,
        tmp_path_factory.mktemp("files"),
        simulator_settings,
        commit_interval_seconds=0.1,
        api_keys={API_KEY: TENANT},
    ) as stack:
        yield stack
