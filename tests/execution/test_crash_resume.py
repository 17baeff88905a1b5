"""Crash safety with real processes: `batch-gateway processor` subprocesses executing a batch
against the simulator, one killed with SIGKILL at a seeded random point (or stopped with
SIGTERM), another finishing the job. Every custom_id ends in exactly one line of the output and
error files, the counts equal the lines, and at most the in-flight window reached the server
twice: the new owner resumed from the committed chunks instead of starting over."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openai import OpenAI
from openai.types import Batch

from batch_gateway.events.batch_events import BatchInProgress, BatchProgress
from batch_gateway.processors.settings import GatewaySettings
from tests.execution.conftest import ClientOf, StartSimulator
from tests.execution.results import (
    TERMINAL,
    ids,
    requests_file,
    results_of,
    start_batch,
    wait_for,
)
from tests.harness.batch_helpers import wait_until_status
from tests.harness.live_stack import LiveStack, StartStack
from tests.harness.processor_processes import ProcessorLauncher, processor_launcher
from tests.harness.simulator_thread import SimulatorThread
from tests.harness.stack_internals import stack_internals

IN_FLIGHT = 16
LEASE_SECONDS = 2.0
FINISH_TIMEOUT_SECONDS = 40.0
# How long a process may take to exit on a busy machine (the grace period is checked apart).
STOP_TIMEOUT_SECONDS = 30.0


@pytest.fixture
def stack(start_stack: StartStack) -> LiveStack:
    """The stack's own processor only validates; the subprocesses execute."""
    return start_stack(processor_overrides={"roles": ["validate"]})


@pytest.fixture
def launcher(stack: LiveStack, tmp_path: Path) -> Iterator[ProcessorLauncher]:
    with processor_launcher(stack.settings, tmp_path) as started:
        yield started


def _executing(sim: SimulatorThread, **changes: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "roles": ["execute"],
        "lease_seconds": LEASE_SECONDS,
        "chunk_size": 8,
        "commit_interval_seconds": 0.2,
        "max_in_flight": IN_FLIGHT,
        "global_inference_gateway": GatewaySettings(url=sim.url),
    }
    return settings | changes


def _sent(sim: SimulatorThread, batch_id: str) -> int:
    """Requests of the batch the simulator has received, repeats included."""
    prefix = f"{batch_id}/"
    return sum(n for key, n in sim.stats().by_batch_request.items() if key.startswith(prefix))


def _committed(client: OpenAI, batch_id: str) -> int:
    counts = client.batches.retrieve(batch_id).request_counts
    return 0 if counts is None else counts.completed + counts.failed


def _assert_finished_exactly_once(
    client: OpenAI, sim: SimulatorThread, batch: Batch, count: int
) -> None:
    assert batch.status == "completed", batch
    results = results_of(client, batch)
    results.assert_each_once(ids(count))
    results.assert_counts_match(batch)
    assert results.errors == []
    sent_twice = _sent(sim, batch.id) - count
    assert 0 <= sent_twice <= IN_FLIGHT, f"{sent_twice} requests were sent again"


async def _owners(stack: LiveStack, batch_id: str) -> tuple[list[str], set[int]]:
    """The processors that claimed the batch, and the claims whose chunks were committed."""
    async with stack_internals(stack.settings) as inside:
        events = await inside.batch_events(batch_id)
    claims = [event.processor for event in events if isinstance(event, BatchInProgress)]
    chunks = [event.chunk for event in events if isinstance(event, BatchProgress) and event.chunk]
    return claims, {int(chunk.rpartition("-")[0].rpartition("_")[2]) for chunk in chunks}


@pytest.mark.parametrize(("seed", "b_running_all_along"), [(1, False), (2, True), (3, False)])
def test_a_job_killed_at_a_random_point_resumes_from_its_committed_chunks(
    stack: LiveStack,
    launcher: ProcessorLauncher,
    start_simulator: StartSimulator,
    client_of: ClientOf,
    seed: int,
    b_running_all_along: bool,
) -> None:
    rng = random.Random(seed)
    count = 400
    # 16 requests in flight, 50 ms each: the batch takes about 1.3 s to send.
    sim = start_simulator(latency_seconds=0.05, jitter=0.5, seed=seed)
    client = client_of(stack)
    kill_after = rng.randint(count // 4, count * 3 // 4)

    a = launcher.start("a", **_executing(sim))
    batch = start_batch(client, requests_file(count))
    wait_for(lambda: _sent(sim, batch.id) > 0, 20, "processor a starts the job")
    if b_running_all_along:
        launcher.start("b", **_executing(sim))
    wait_for(lambda: _committed(client, batch.id) > 0, 10, "a commits a chunk")
    wait_for(lambda: _sent(sim, batch.id) >= kill_after, 10, f"{kill_after} requests sent")
    a.kill()
    committed_by_a = _committed(client, batch.id)
    assert committed_by_a < count, "killed too late to test anything"
    if not b_running_all_along:
        launcher.start("b", **_executing(sim))

    final = wait_until_status(client, batch.id, TERMINAL, FINISH_TIMEOUT_SECONDS)

    try:
        _assert_finished_exactly_once(client, sim, final, count)
    except AssertionError:
        print(launcher.logs())
        raise
    claims, committing = asyncio.run(_owners(stack, batch.id))
    assert claims == ["a", "b"]
    assert committing == {1, 2}, "b resumed after what a had committed"


def test_a_processor_stopped_with_sigterm_exits_cleanly_and_another_finishes_the_job(
    stack: LiveStack,
    launcher: ProcessorLauncher,
    start_simulator: StartSimulator,
    client_of: ClientOf,
) -> None:
    count = 500
    grace = 1.0
    # 16 requests in flight, 100 ms each: about 3 s of work, more than the grace period.
    sim = start_simulator(latency_seconds=0.1)
    client = client_of(stack)
    a = launcher.start("a", **_executing(sim, shutdown_grace_seconds=grace))
    batch = start_batch(client, requests_file(count))
    wait_for(lambda: _committed(client, batch.id) > 0, 20, "a commits a chunk")

    a.terminate()
    assert a.wait(timeout=STOP_TIMEOUT_SECONDS) == 0, launcher.logs()
    stopped = a.logged_at("processor stopped") - a.logged_at("stopping:")
    assert stopped.total_seconds() < grace + 1, "a stops within its grace period"
    assert _committed(client, batch.id) < count, "a was stopped mid-job"
    launcher.start("b", **_executing(sim))

    final = wait_until_status(client, batch.id, TERMINAL, FINISH_TIMEOUT_SECONDS)

    try:
        _assert_finished_exactly_once(client, sim, final, count)
    except AssertionError:
        print(launcher.logs())
        raise
    claims, committing = asyncio.run(_owners(stack, batch.id))
    assert claims == ["a", "b"]
    assert committing == {1, 2}
