"""One batch worked by three `batch-gateway processor` subprocesses at once, in slices; one is
killed with SIGKILL mid-way. Each processor commits results of the batch, each custom_id ends
in exactly one line, the counts equal the lines, and what reached the server twice is at most
the in-flight windows of the slices the killed processor held."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from batch_gateway.events.batch_events import BatchInProgress, BatchProgress
from batch_gateway.processors.settings import GatewaySettings
from tests.execution.conftest import ClientOf, StartSimulator
from tests.execution.results import TERMINAL, ids, requests_file, results_of, start_batch, wait_for
from tests.harness.batch_helpers import wait_until_status
from tests.harness.live_stack import LiveStack, StartStack
from tests.harness.processor_processes import ProcessorLauncher, processor_launcher
from tests.harness.simulator_thread import SimulatorThread
from tests.harness.stack_internals import stack_internals

SLICE_SIZE = 100
IN_FLIGHT = 16
SLICES_PER_PROCESSOR = 2


@pytest.fixture
def stack(start_stack: StartStack) -> LiveStack:
    """The stack's own processor only validates (cutting batches into small slices)."""
    return start_stack(processor_overrides={"roles": ["validate"], "slice_size": SLICE_SIZE})


@pytest.fixture
def launcher(stack: LiveStack, tmp_path: Path) -> Iterator[ProcessorLauncher]:
    with processor_launcher(stack.settings, tmp_path) as started:
        yield started


def _sent(sim: SimulatorThread, batch_id: str) -> int:
    prefix = f"{batch_id}/"
    return sum(n for key, n in sim.stats().by_batch_request.items() if key.startswith(prefix))


async def _workers(stack: LiveStack, batch_id: str) -> tuple[set[str], set[str]]:
    """The processors that claimed slices of the batch, and those whose claims committed."""
    async with stack_internals(stack.settings) as inside:
        events = await inside.batch_events(batch_id)
    claimed_by = {
        (event.slice, event.attempt): event.processor
        for event in events
        if isinstance(event, BatchInProgress)
    }
    committers = set()
    for event in events:
        if isinstance(event, BatchProgress) and event.chunk:
            slice_part, _, claim = event.chunk.rpartition("-")[0].partition("_")
            committers.add(claimed_by[int(slice_part[1:]), int(claim)])
    return set(claimed_by.values()), committers


def test_three_processors_share_one_batch_and_one_killed_loses_and_repeats_little(
    stack: LiveStack,
    launcher: ProcessorLauncher,
    start_simulator: StartSimulator,
    client_of: ClientOf,
) -> None:
    rng = random.Random(5)
    count = 1500
    sim = start_simulator(latency_seconds=0.05, jitter=0.5, seed=5)
    executing = {
        "roles": ["execute"],
        "lease_seconds": 2.0,
        "chunk_size": 8,
        "commit_interval_seconds": 0.2,
        "max_in_flight": IN_FLIGHT,
        "max_slices_per_batch": SLICES_PER_PROCESSOR,
        "global_inference_gateway": GatewaySettings(url=sim.url),
    }
    processors = {name: launcher.start(name, **executing) for name in ("a", "b", "c")}
    client = client_of(stack)
    batch = start_batch(client, requests_file(count))
    kill_after = rng.randint(count // 4, count // 2)
    wait_for(lambda: _sent(sim, batch.id) >= kill_after, 30, f"{kill_after} requests sent")
    processors["b"].kill()

    final = wait_until_status(client, batch.id, TERMINAL, 60)

    try:
        assert final.status == "completed", final
        results = results_of(client, final)
        results.assert_each_once(ids(count))
        results.assert_counts_match(final)
        sent_twice = _sent(sim, batch.id) - count
        assert 0 <= sent_twice <= SLICES_PER_PROCESSOR * IN_FLIGHT, f"{sent_twice} sent again"
        claimers, committers = asyncio.run(_workers(stack, batch.id))
        assert claimers == {"a", "b", "c"}, "every processor worked on the one batch"
        assert committers >= {"a", "c"}
    except AssertionError:
        print(launcher.logs())
        raise
