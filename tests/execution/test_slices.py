"""Batches in slices, drained on real executors against the simulator: every slice runs and
commits on its own, the batch finalizes once; requests that share a prefix go together; the
router's hints go with every request, a request the router shed is tried again, and the
gateway's limit holds however many slices run."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from batch_gateway.events import EventLog
from batch_gateway.events.aggregate_store import AggregateStore
from batch_gateway.events.batch_aggregate import BatchState, evolve_batch
from batch_gateway.events.batch_events import BatchCompleted, BatchInProgress, BatchSliceDone
from batch_gateway.processors.settings import GatewaySettings
from batch_gateway.simulator import SimulatorSettings
from batch_gateway.simulator.component import running_simulator
from batch_gateway.storage.filesystem import FilesystemStorage
from tests.execution.queued_jobs import NOW, processor_settings, queued_batch, result_lines
from tests.execution.results import request
from tests.harness.executors import executor_for
from tests.processors.batch_inputs import TENANT


async def _drain(settings: Any, log: EventLog, batch_id: str) -> BatchState:
    async with executor_for(settings, lambda: NOW) as executor:
        await executor.drain()
    state, _ = await AggregateStore(log, evolve_batch).load(batch_id)
    assert state is not None
    return state


async def _events(log: EventLog, batch_id: str) -> list[object]:
    return [record.envelope.event for record in await log.read_aggregate(batch_id)]


async def test_a_batch_in_slices_runs_each_once_and_finalizes_once(
    redis_url: str, key_prefix: str, event_log: EventLog, storage: FilesystemStorage, objects: Path
) -> None:
    batch_id, _ = await queued_batch(event_log, storage, 45, slice_size=10)
    async with running_simulator(SimulatorSettings(port=0)) as sim:
        gateway = GatewaySettings(url=sim.url)
        settings = processor_settings(
            redis_url, key_prefix, objects, global_inference_gateway=gateway
        )
        state = await _drain(settings, event_log, batch_id)
        sent = sim.stats().by_batch_request

    assert state.status == "completed"
    assert state.request_counts.completed == 45
    output = await result_lines(event_log, storage, state.output_file_id)
    assert sorted(line["custom_id"] for line in output) == sorted(f"r{i}" for i in range(45))
    assert set(sent.values()) == {1}, "each request sent once"
    events = await _events(event_log, batch_id)
    claimed = sorted(e.slice for e in events if isinstance(e, BatchInProgress))
    done = sorted(e.slice for e in events if isinstance(e, BatchSliceDone))
    assert claimed == done == [0, 1, 2, 3, 4]
    assert sum(isinstance(e, BatchCompleted) for e in events) == 1
    assert state.finalizer_slice in range(5)


async def test_requests_sharing_a_system_prompt_are_sent_together(
    redis_url: str, key_prefix: str, event_log: EventLog, storage: FilesystemStorage, objects: Path
) -> None:
    # Two long system prompts, interleaved line by line; the server caches one prefix.
    lines = []
    for i in range(40):
        system = ("legal " if i % 2 else "medical ") * 50
        line = request(f"r{i}")
        line["body"]["messages"].insert(0, {"role": "system", "content": system})
        lines.append(json.dumps(line).encode())
    content = b"\n".join(lines) + b"\n"
    hit_rates = {}
    for order_bytes in (0, 1 << 20):
        batch_id, _ = await queued_batch(event_log, storage, 40, content)
        simulator = SimulatorSettings(port=0, prefix_cache_size=1)
        async with running_simulator(simulator) as sim:
            gateway = GatewaySettings(url=sim.url, max_concurrency=1)
            settings = processor_settings(
                redis_url,
                key_prefix,
                objects,
                global_inference_gateway=gateway,
                prefix_order_bytes=order_bytes,
            )
            state = await _drain(settings, event_log, batch_id)
        output = await result_lines(event_log, storage, state.output_file_id)
        cached = [line["response"]["body"]["usage"]["prompt_tokens_details"] for line in output]
        hit_rates[order_bytes] = sum(1 for d in cached if d["cached_tokens"]) / len(output)

    assert hit_rates[0] == 0.0, "in file order, each request evicts the other's prefix"
    assert hit_rates[1 << 20] >= 0.9


async def test_router_hints_go_with_every_request_and_shed_requests_are_tried_again(
    redis_url: str, key_prefix: str, event_log: EventLog, storage: FilesystemStorage, objects: Path
) -> None:
    batch_id, _ = await queued_batch(event_log, storage, 30)
    simulator = SimulatorSettings(port=0, rate_dropped=0.4, seed=7)
    async with running_simulator(simulator) as sim:
        gateway = GatewaySettings(url=sim.url, inference_objective="batch-sheddable")
        # One attempt each: a shed request that counted as an attempt would fail its line.
        settings = processor_settings(
            redis_url,
            key_prefix,
            objects,
            global_inference_gateway=gateway,
            max_attempts=1,
            backoff_initial_seconds=0.01,
            backoff_max_seconds=0.05,
        )
        state = await _drain(settings, event_log, batch_id)
        stats = sim.stats()

    assert state.status == "completed"
    assert state.request_counts.completed == 30, "shed requests are retried, not failed"
    assert stats.by_status.get("429", 0) > 0, "the simulator did shed some"
    assert stats.by_fairness_id == {TENANT: stats.requests}
    assert stats.by_objective == {"batch-sheddable": stats.requests}
    assert stats.with_slo == stats.requests


async def test_never_more_in_flight_than_the_gateway_allows_however_many_slices_run(
    redis_url: str, key_prefix: str, event_log: EventLog, storage: FilesystemStorage, objects: Path
) -> None:
    batches = [
        (await queued_batch(event_log, storage, 60, tenant=tenant, slice_size=10))[0]
        for tenant in ("tenant-a", "tenant-b")
    ]
    simulator = SimulatorSettings(port=0, latency_seconds=0.02, capacity=100)
    async with running_simulator(simulator) as sim:
        gateway = GatewaySettings(url=sim.url, max_concurrency=3)
        settings = processor_settings(
            redis_url,
            key_prefix,
            objects,
            global_inference_gateway=gateway,
            max_concurrent_jobs=8,
            max_slices_per_batch=4,
        )
        async with executor_for(settings, lambda: NOW) as executor:
            await executor.drain()
        stats = sim.stats()

    assert stats.peak_running == 3
    per_batch = Counter(key.split("/")[0] for key in stats.by_batch_request)
    assert per_batch == dict.fromkeys(batches, 60)
