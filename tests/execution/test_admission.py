"""The admission gate against a real (simulated) server: it closes within 2 s of saturation,
sends nothing while closed, reopens gradually within 2 s of recovery, and fails closed when
the metrics cannot be read; Prometheus query answers are read as the HTTP API gives them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest

from batch_gateway.processors.execution.admission import (
    AdmissionGate,
    Load,
    Unreadable,
    value_of_query_answer,
)
from batch_gateway.processors.execution.dispatch import Dispatcher, Gateway
from batch_gateway.processors.execution.flow_control import AdaptiveLimit
from batch_gateway.processors.settings import GatewaySettings, ProcessorSettings
from batch_gateway.simulator import ModelBehaviour, RunningSimulator, SimulatorSettings
from batch_gateway.simulator.component import running_simulator
from batch_gateway.stack.redis_server import free_port
from tests.observability.samples import value

CHAT = "/v1/chat/completions"
JSON = {"content-type": "application/json"}
BODY = b'{"model": "sim-model", "messages": [{"role": "user", "content": "hi"}]}'


async def _within(seconds: float, condition: Callable[[], bool]) -> float:
    """How long `condition` took to hold; fails past `seconds`."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds, f"not within {seconds} s"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


@pytest.fixture
async def simulator() -> AsyncIterator[RunningSimulator]:
    # Eight slots; an interactive request (model "slow") holds one for 2.5 s.
    slow = ModelBehaviour(latency_seconds=2.5)
    settings = SimulatorSettings(port=0, capacity=8, latency_seconds=0.05, models={"slow": slow})
    async with running_simulator(settings) as sim:
        yield sim


def _gateway(dispatcher: Dispatcher, settings: GatewaySettings) -> Gateway:
    return dispatcher.gateway(settings)


async def test_the_gate_closes_on_saturation_sends_nothing_and_reopens_gradually(
    simulator: RunningSimulator,
) -> None:
    settings = GatewaySettings(
        url=simulator.url,
        max_concurrency=16,
        metrics_url=f"{simulator.url}/metrics",
        max_running=4,
    )
    dispatcher = Dispatcher(ProcessorSettings(global_inference_gateway=settings))
    gateway = _gateway(dispatcher, settings)
    try:
        async with aiohttp.ClientSession() as interactive:
            # Interactive traffic the gateway does not see, except in the server's metrics.
            body = b'{"model": "slow", "messages": [{"role": "user", "content": "hi"}]}'
            busy = [
                asyncio.create_task(interactive.post(simulator.url + CHAT, data=body))
                for _ in range(6)
            ]
            closing = await _within(2.0, lambda: gateway.limit.closed)
            before = simulator.stats().requests
            sending = asyncio.create_task(
                dispatcher.send(
                    gateway, CHAT, "batch-1", BODY, {"content-type": "application/json"}
                )
            )
            await asyncio.sleep(0.5)
            assert simulator.stats().requests == before, "nothing is sent while closed"
            responses = await asyncio.gather(*busy)
            recovered = time.monotonic()
            reopening = await _within(2.0, lambda: not gateway.limit.closed)
            assert gateway.limit.cap <= 2, "reopened at the minimum, not all at once"
            line = await asyncio.wait_for(sending, 5)
            for response in responses:
                response.release()
    finally:
        await dispatcher.close()
    assert closing <= 2.0
    assert time.monotonic() - recovered >= reopening
    assert line is not None
    assert line.succeeded


async def test_unreadable_metrics_close_the_gate_after_their_grace() -> None:
    settings = GatewaySettings(
        url="http://127.0.0.1:1",
        metrics_url=f"http://127.0.0.1:{free_port()}/metrics",
        metrics_grace_seconds=0.5,
    )
    dispatcher = Dispatcher(ProcessorSettings(global_inference_gateway=settings))
    failed_before = value("batch_gateway_gateway_metrics_failures_total", gateway="global")
    gateway = _gateway(dispatcher, settings)
    try:
        assert not gateway.limit.closed, "within the grace the gate stays as it was"
        await _within(2.0, lambda: gateway.limit.closed)
        assert value("batch_gateway_gateway_saturated", gateway="global") == 1.0
    finally:
        await dispatcher.close()
    assert value("batch_gateway_gateway_metrics_failures_total", gateway="global") > failed_before


def test_a_prometheus_answer_is_summed_and_a_failed_query_is_unreadable() -> None:
    answer = (
        b'{"status":"success","data":{"resultType":"vector","result":['
        b'{"metric":{"pod":"a"},"value":[1700000000.1,"3"]},'
        b'{"metric":{"pod":"b"},"value":[1700000000.1,"4.5"]}]}}'
    )
    assert value_of_query_answer(answer) == 7.5
    empty = b'{"status":"success","data":{"resultType":"vector","result":[]}}'
    assert value_of_query_answer(empty) is None
    with pytest.raises(Unreadable):
        value_of_query_answer(b'{"status":"error","errorType":"bad_data","error":"parse"}')


async def test_the_cap_is_max_running_less_what_runs_that_is_not_ours() -> None:
    limit = AdaptiveLimit(maximum=64)
    limit.in_flight = 10  # ours, as the server counts them among its running requests
    settings = GatewaySettings(url="http://127.0.0.1:1", max_running=24)
    async with aiohttp.ClientSession() as session:
        gate = AdmissionGate("g", settings, limit, session)
        assert gate.room(Load(waiting=0, running=16, kv_cache=None)) == 18  # 6 interactive
        assert gate.room(Load(waiting=0, running=40, kv_cache=None)) == -6  # closes
        assert gate.over(Load(waiting=9, running=0, kv_cache=None)) == "9 waiting"


async def test_waiting_requests_take_our_slots_first_and_a_full_kv_cache_closes() -> None:
    limit = AdaptiveLimit(maximum=64)
    settings = GatewaySettings(
        url="http://127.0.0.1:1",
        metrics_url="http://127.0.0.1:1/metrics",
        max_running=24,
        saturation_waiting_threshold=0,
        max_kv_cache_usage=0.9,
    )
    async with aiohttp.ClientSession() as session:
        gate = AdmissionGate("g", settings, limit, session)
        assert limit.cap == 1, "the load is unknown until the first reading"
        limit.cap, limit.in_flight = 20.0, 20
        assert gate.target(Load(waiting=0, running=22, kv_cache=0.5)) == 22
        assert gate.target(Load(waiting=3, running=24, kv_cache=0.5)) == 17
        limit.admit(17)
        limit.in_flight = 17
        assert gate.target(Load(waiting=3, running=24, kv_cache=0.5)) == 14, "still waiting"
        assert gate.target(Load(waiting=30, running=24, kv_cache=0.5)) < 1
        assert gate.target(Load(waiting=0, running=17, kv_cache=0.95)) == 0
