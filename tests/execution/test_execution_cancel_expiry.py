"""Stopping a running batch: a cancel request, the end of its completion window while it runs,
and a batch whose window ended before any processor claimed it. Dispatch stops within a second,
what was done is kept, and every request without a result gets its line."""

from __future__ import annotations

import time
from typing import Any

from openai import OpenAI
from openai.types import Batch

from batch_gateway.processors.settings import GatewaySettings, ProcessorSettings
from batch_gateway.settings import settings_for
from tests.execution.conftest import ClientOf, StartExecuting, StartSimulator
from tests.execution.results import (
    TERMINAL,
    Results,
    ids,
    requests_file,
    results_of,
    start_batch,
    wait_for,
)
from tests.harness.batch_helpers import wait_until_status
from tests.harness.executors import ShiftedClock, executor_for
from tests.harness.simulator_thread import SimulatorThread

COUNT = 120
# The simulator answers 4 requests at a time in 0.2 s: the batch would take 6 s to run.
SLOW: dict[str, Any] = {"latency_seconds": 0.2, "capacity": 4}
WINDOW: dict[str, Any] = {"max_in_flight": 8, "cancel_grace_seconds": 0.3}
STOP_SECONDS = 1.0
DAY = 86_400


def _started(client: OpenAI, sim: SimulatorThread, reached: int = 12) -> Batch:
    """A batch of COUNT requests of which at least `reached` have reached the simulator."""
    batch = start_batch(client, requests_file(COUNT))
    wait_for(lambda: sim.stats().requests >= reached, 10, "requests reach the simulator")
    return batch


def _assert_stopped_with(results: Results, batch: Batch, code: str) -> None:
    results.assert_each_once(ids(COUNT))
    results.assert_counts_match(batch)
    assert results.output, "what finished before the stop is kept"
    for line in results.output:
        assert line["response"]["status_code"] == 200
    assert set(results.error_codes) == {code}
    for line in results.errors:
        assert line["response"] is None
        assert line["error"]["message"]
    assert len(results.errors) >= COUNT // 2  # most of the batch never ran


def _requests_after(sim: SimulatorThread, seconds: float) -> int:
    time.sleep(seconds)
    return sim.stats().requests


def test_a_cancelled_batch_stops_dispatching_and_keeps_its_partial_results(
    start_simulator: StartSimulator, start_executing: StartExecuting, client_of: ClientOf
) -> None:
    sim = start_simulator(**SLOW)
    gateway = GatewaySettings(url=sim.url)
    client = client_of(start_executing(global_inference_gateway=gateway, **WINDOW))
    batch = _started(client, sim)

    cancelling = client.batches.cancel(batch.id)

    assert cancelling.status == "cancelling"
    settled = _requests_after(sim, STOP_SECONDS)
    final = wait_until_status(client, batch.id, TERMINAL, 15)
    assert final.status == "cancelled", final
    assert final.cancelling_at is not None
    assert final.cancelled_at is not None
    assert sim.stats().requests == settled, "no request is sent a second after the cancel"
    assert settled < COUNT
    results = results_of(client, final)
    _assert_stopped_with(results, final, "batch_cancelled")
    assert len(results.output) <= settled


def test_a_cancel_also_stops_requests_queued_for_a_gateway_slot(
    start_simulator: StartSimulator, start_executing: StartExecuting, client_of: ClientOf
) -> None:
    # The whole batch fits in the job's window, so every request is already a task waiting
    # for one of the gateway's 4 slots when the cancel comes: none of those may be sent, even
    # during the grace that requests already on the wire get.
    sim = start_simulator(**SLOW)
    gateway = GatewaySettings(url=sim.url, max_concurrency=4)
    client = client_of(
        start_executing(
            global_inference_gateway=gateway, max_in_flight=512, cancel_grace_seconds=0.3
        )
    )
    batch = _started(client, sim)

    client.batches.cancel(batch.id)

    settled = _requests_after(sim, STOP_SECONDS)
    final = wait_until_status(client, batch.id, TERMINAL, 15)
    assert final.status == "cancelled", final
    assert sim.stats().requests == settled, "queued requests are not sent after the cancel"
    assert settled < COUNT // 2
    _assert_stopped_with(results_of(client, final), final, "batch_cancelled")


def test_a_batch_whose_window_ends_while_it_runs_expires(
    start_simulator: StartSimulator, start_executing: StartExecuting, client_of: ClientOf
) -> None:
    sim = start_simulator(**SLOW)
    clock = ShiftedClock()
    gateway = GatewaySettings(url=sim.url)
    client = client_of(start_executing(clock=clock, global_inference_gateway=gateway, **WINDOW))
    batch = _started(client, sim)

    clock.offset = DAY + 60

    settled = _requests_after(sim, STOP_SECONDS)
    final = wait_until_status(client, batch.id, TERMINAL, 15)
    assert final.status == "expired", final
    assert final.expired_at is not None
    assert final.expires_at is not None
    assert final.expired_at >= final.expires_at
    assert sim.stats().requests == settled
    _assert_stopped_with(results_of(client, final), final, "batch_expired")


async def test_a_batch_past_its_window_when_claimed_expires_without_sending_anything(
    start_simulator: StartSimulator, start_executing: StartExecuting, client_of: ClientOf
) -> None:
    sim = start_simulator()
    clock = ShiftedClock()
    gateway = GatewaySettings(url=sim.url)
    stack = start_executing(clock=clock, roles=["validate"], global_inference_gateway=gateway)
    client = client_of(stack)
    batch = start_batch(client, requests_file(COUNT))
    wait_until_status(client, batch.id, {"in_progress"})

    clock.offset = DAY + 60
    settings = settings_for(
        ProcessorSettings, stack.settings, name="late", global_inference_gateway=gateway
    )
    async with executor_for(settings, clock) as executor:
        await executor.drain()

    final = wait_until_status(client, batch.id, TERMINAL)
    assert final.status == "expired", final
    assert final.output_file_id is None
    results = results_of(client, final)
    results.assert_each_once(ids(COUNT))
    results.assert_counts_match(final)
    assert results.error_codes == {"batch_expired": COUNT}
    assert sim.stats().requests == 0
