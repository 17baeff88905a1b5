"""The executor in drain mode against real Redis and the simulator: poison jobs dead-lettered
with their batch failed, a job taken over by another processor left to its new owner, a job
never started twice by the processor that runs it, and a job whose commits fail."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterable
from pathlib import Path
from typing import cast

import pytest
import redis.asyncio as aioredis

from batch_gateway.events import EventLog
from batch_gateway.events.aggregate_store import AggregateStore
from batch_gateway.events.batch_aggregate import BatchState, evolve_batch
from batch_gateway.processors.component import MAX_DELIVERIES
from batch_gateway.processors.consumer_group import Entry
from batch_gateway.processors.execution.job_queue import GROUP
from batch_gateway.processors.execution.ownership import Ownership
from batch_gateway.processors.execution.priority import slice_stream
from batch_gateway.processors.settings import GatewaySettings, ProcessorSettings
from batch_gateway.simulator import SimulatorSettings, running_simulator
from batch_gateway.storage import FilesystemStorage, StorageUnavailable
from tests.execution.conftest import MakeQueue
from tests.execution.queued_jobs import (
    LEASE_MS,
    NOW,
    processor_settings,
    queued_batch,
    result_lines,
)
from tests.execution.results import request
from tests.harness.executors import executor_for


class ResultsUnwritable(FilesystemStorage):
    """Storage that holds the input files but refuses every result chunk."""

    async def write(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        if key.startswith("results/"):
            raise StorageUnavailable("the result store is down")
        return await super().write(key, chunks)


def _slices(log: EventLog, batch_id: str) -> str:
    return slice_stream(log.keys, log.keys.partition_of(batch_id), batch_id)


async def _pending(client: aioredis.Redis, log: EventLog, batch_id: str) -> list[tuple[bytes, int]]:
    summary = await client.xpending(_slices(log, batch_id), GROUP)
    return [(consumer["name"], consumer["pending"]) for consumer in summary["consumers"]]


async def _drain_until_ended(
    settings: ProcessorSettings, log: EventLog, batch_id: str
) -> BatchState:
    """Drain an executor, again after each lease, until the batch ends (a crashing job is
    retried once its lease lapses, and dead-lettered after MAX_DELIVERIES)."""
    batches = AggregateStore(log, evolve_batch)
    async with executor_for(settings, lambda: NOW) as executor:
        for _ in range(3 * MAX_DELIVERIES):
            await executor.drain()
            state, _ = await batches.load(batch_id)
            assert state is not None
            if state.terminal:
                return state
            await asyncio.sleep(LEASE_MS * 1.2 / 1000)
    raise AssertionError(f"{batch_id} did not end")


async def test_a_poison_job_is_dead_lettered_and_its_batch_failed(
    redis_url: str,
    key_prefix: str,
    redis_client: aioredis.Redis,
    event_log: EventLog,
    storage: FilesystemStorage,
    objects: Path,
) -> None:
    batch_id, input_key = await queued_batch(event_log, storage, 3)
    await storage.delete(input_key)  # its bytes vanished: every attempt crashes

    settings = processor_settings(redis_url, key_prefix, objects, name="p")
    state = await _drain_until_ended(settings, event_log, batch_id)

    assert state.status == "failed"
    assert [error.code for error in state.errors] == ["processing_failed"]
    assert f"{MAX_DELIVERIES + 1} times" in state.errors[0].message
    dead = cast(list[Entry], await redis_client.xrange(f"{event_log.keys.tag}:dead-letter"))
    assert [fields[b"batch_id"].decode() for _, fields in dead] == [batch_id]
    assert dead[0][1][b"source_stream"] == _slices(event_log, batch_id).encode()
    assert not await redis_client.exists(_slices(event_log, batch_id)), (
        "with nothing pending, the batch's slices are gone"
    )


async def test_a_request_that_cannot_be_sent_fails_its_own_line(
    redis_url: str, key_prefix: str, event_log: EventLog, storage: FilesystemStorage, objects: Path
) -> None:
    batch_id, _ = await queued_batch(event_log, storage, 3)
    # aiohttp refuses this URL with a ValueError: no request can be sent, none may be lost.
    broken = {"sim-model": GatewaySettings(url="http://[::1")}

    settings = processor_settings(redis_url, key_prefix, objects, model_gateways=broken)
    state = await _drain_until_ended(settings, event_log, batch_id)

    assert state.status == "completed"
    assert state.claims == 1, "a request's failure is not its job's"
    errors = await result_lines(event_log, storage, state.error_file_id)
    assert sorted(line["custom_id"] for line in errors) == ["r0", "r1", "r2"]
    assert {line["error"]["code"] for line in errors} == {"request_failed"}
    assert "ValueError" in errors[0]["error"]["message"]


async def test_a_poison_request_fails_its_line_while_the_others_are_answered(
    redis_url: str, key_prefix: str, event_log: EventLog, storage: FilesystemStorage, objects: Path
) -> None:
    # A custom_id aiohttp refuses in a header (validation stops it today; this is the net
    # under it, for whatever value slips through next).
    lines = [request(f"r{i}") for i in range(3)] + [request("bad\nid")]
    content = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
    batch_id, _ = await queued_batch(event_log, storage, 4, content)
    async with running_simulator(SimulatorSettings(port=0)) as sim:
        gateway = GatewaySettings(url=sim.url)
        settings = processor_settings(
            redis_url, key_prefix, objects, global_inference_gateway=gateway
        )
        state = await _drain_until_ended(settings, event_log, batch_id)

    assert state.status == "completed"
    assert state.request_counts.completed == 3
    output = await result_lines(event_log, storage, state.output_file_id)
    errors = await result_lines(event_log, storage, state.error_file_id)
    assert sorted(line["custom_id"] for line in output) == ["r0", "r1", "r2"]
    assert [(line["custom_id"], line["error"]["code"]) for line in errors] == [
        ("bad\nid", "request_failed")
    ]


async def test_a_job_that_keeps_crashing_fails_fast_and_keeps_what_it_committed(
    redis_url: str,
    key_prefix: str,
    event_log: EventLog,
    storage: FilesystemStorage,
    objects: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    batch_id, _ = await queued_batch(event_log, storage, 40)
    refresh = Ownership.refresh
    refreshes = 0

    async def crashing_refresh(self: Ownership) -> BatchState:
        # A bug that strikes after the first job has committed some results, and then always.
        nonlocal refreshes
        refreshes += 1
        if refreshes > 3:
            raise RuntimeError("injected bug")
        return await refresh(self)

    monkeypatch.setattr(Ownership, "refresh", crashing_refresh)
    simulator = SimulatorSettings(port=0, latency_seconds=0.05)
    async with running_simulator(simulator) as sim:
        gateway = GatewaySettings(url=sim.url)
        settings = processor_settings(
            redis_url,
            key_prefix,
            objects,
            max_in_flight=4,
            commit_interval_seconds=0.1,
            global_inference_gateway=gateway,
        )
        state = await _drain_until_ended(settings, event_log, batch_id)
        sent = sim.stats().by_batch_request

    assert state.status == "failed"
    assert [error.code for error in state.errors] == ["processing_failed"]
    assert "RuntimeError: injected bug" in state.errors[0].message
    output = await result_lines(event_log, storage, state.output_file_id)
    errors = await result_lines(event_log, storage, state.error_file_id)
    assert output, "the results committed before the crashes are kept"
    assert {line["error"]["code"] for line in errors} == {"processing_failed"}
    ids = sorted(line["custom_id"] for line in output + errors)
    assert ids == sorted(f"r{i}" for i in range(40)), "every request exactly once"
    assert state.request_counts.completed == len(output)
    assert state.request_counts.failed == len(errors)
    assert all(count == 1 for count in sent.values())


async def test_a_cancellation_absorbed_by_a_refresh_does_not_keep_the_job_from_ending(
    redis_url: str,
    key_prefix: str,
    event_log: EventLog,
    storage: FilesystemStorage,
    objects: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Issue 10: the Redis read inside `refresh` swallowed the watcher's cancellation, and the
    # job waited for its watcher forever. Here every refresh swallows one.
    batch_id, _ = await queued_batch(event_log, storage, 10)
    refresh = Ownership.refresh

    async def absorbing_refresh(self: Ownership) -> BatchState:
        # Slow, so that the job's end finds its watcher here and nowhere else.
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(10)
        return await refresh(self)

    monkeypatch.setattr(Ownership, "refresh", absorbing_refresh)
    async with running_simulator(SimulatorSettings(port=0)) as sim:
        gateway = GatewaySettings(url=sim.url)
        settings = processor_settings(
            redis_url, key_prefix, objects, global_inference_gateway=gateway
        )
        async with executor_for(settings, lambda: NOW) as executor:
            await asyncio.wait_for(executor.drain(), 20)

    state, _ = await AggregateStore(event_log, evolve_batch).load(batch_id)
    assert state is not None
    assert state.status == "completed"


async def test_a_job_taken_over_by_another_processor_stays_pending_for_its_new_owner(
    redis_url: str,
    key_prefix: str,
    redis_client: aioredis.Redis,
    event_log: EventLog,
    storage: FilesystemStorage,
    objects: Path,
    queue_of: MakeQueue,
) -> None:
    batch_id, _ = await queued_batch(event_log, storage, 40)
    batches = AggregateStore(event_log, evolve_batch)
    simulator = SimulatorSettings(port=0, latency_seconds=0.1)
    async with running_simulator(simulator) as sim:
        gateway = GatewaySettings(url=sim.url)
        settings = processor_settings(
            redis_url,
            key_prefix,
            objects,
            name="a",
            max_in_flight=2,
            global_inference_gateway=gateway,
        )
        async with executor_for(settings, lambda: NOW) as executor:
            # Drained, a's job runs without a heartbeat: its lease lapses while it works.
            running = asyncio.create_task(executor.drain())
            # The entry is b's once it has been idle a lease since a took it; on a loaded
            # machine a may take it late, so b asks again until then (a's job runs ~2 s).
            taken = None
            for _ in range(10):
                await asyncio.sleep(LEASE_MS * 2 / 1000)
                taken = await queue_of("b").next(None)
                if taken is not None or running.done():
                    break
            assert taken is not None
            assert taken.batch_id == batch_id
            assert await Ownership.claim_slice(batches, batch_id, 0, "b", NOW) is not None
            await asyncio.wait_for(running, 10)  # a notices and lets go
        sent = sim.stats().requests
    assert 0 < sent < 40, "a was stopped mid-job"

    state, _ = await batches.load(batch_id)
    assert state is not None
    assert state.status == "in_progress"
    assert state.claims == 2
    assert await _pending(redis_client, event_log, batch_id) == [(b"b", 1)], (
        "a must not acknowledge the entry b now owns"
    )


async def test_a_processor_that_reclaims_its_own_running_job_does_not_start_it_again(
    redis_url: str,
    key_prefix: str,
    event_log: EventLog,
    storage: FilesystemStorage,
    objects: Path,
) -> None:
    batch_id, _ = await queued_batch(event_log, storage, 20)
    simulator = SimulatorSettings(port=0, latency_seconds=0.05)
    async with running_simulator(simulator) as sim:
        gateway = GatewaySettings(url=sim.url)
        settings = processor_settings(
            redis_url,
            key_prefix,
            objects,
            name="a",
            max_in_flight=2,
            global_inference_gateway=gateway,
        )
        # Drained, the job runs without a heartbeat: its lease lapses many times over, and the
        # executor's own polling reclaims the entry (as after a long pause of the process).
        async with executor_for(settings, lambda: NOW) as executor:
            await asyncio.wait_for(executor.drain(), 10)
        sent = sim.stats().by_batch_request

    state, _ = await AggregateStore(event_log, evolve_batch).load(batch_id)
    assert state is not None
    assert state.status == "completed"
    assert state.claims == 1
    assert sent == {f"{batch_id}/r{i}": 1 for i in range(20)}


async def test_a_job_whose_commits_fail_stops_dispatching_and_is_retried_later(
    redis_url: str,
    key_prefix: str,
    redis_client: aioredis.Redis,
    event_log: EventLog,
    storage: FilesystemStorage,
    objects: Path,
) -> None:
    batch_id, _ = await queued_batch(event_log, storage, 20)
    unwritable = ResultsUnwritable(objects)
    await unwritable.open()
    async with running_simulator(SimulatorSettings(port=0)) as sim:
        gateway = GatewaySettings(url=sim.url)
        settings = processor_settings(
            redis_url,
            key_prefix,
            objects,
            name="a",
            max_in_flight=4,
            global_inference_gateway=gateway,
        )
        async with executor_for(settings, lambda: NOW, storage=unwritable) as executor:
            # Results wait for their commit in the window: without commits, dispatch stops.
            await asyncio.wait_for(executor.drain(), 5)
        sent = sim.stats().requests
    await unwritable.close()

    assert sent == 4
    state, _ = await AggregateStore(event_log, evolve_batch).load(batch_id)
    assert state is not None
    assert state.status == "in_progress"
    assert state.chunks == []
    assert await _pending(redis_client, event_log, batch_id) == [(b"a", 1)], "left for a retry"
