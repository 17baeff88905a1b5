"""AIMD concurrency: halve on overload (once per cooldown), creep up on success, bounded
slots, and the admission gate's close and gradual reopening."""

from __future__ import annotations

import asyncio

import pytest

from batch_gateway.processors.execution.admission import Unreadable, load_from_metrics
from batch_gateway.processors.execution.dispatch import Dispatcher
from batch_gateway.processors.execution.fair_share import Flow
from batch_gateway.processors.execution.flow_control import AdaptiveLimit
from batch_gateway.processors.settings import GatewaySettings, ProcessorSettings
from batch_gateway.simulator import SimulatorSettings
from batch_gateway.simulator.component import running_simulator
from tests.harness.flow_slots import holding


def test_overload_halves_once_per_cooldown_and_never_below_the_minimum() -> None:
    limit = AdaptiveLimit(maximum=64, minimum=4, cooldown_seconds=60)
    limit.on_overload()
    limit.on_overload()  # same burst: counted once
    assert limit.limit == 32
    fast = AdaptiveLimit(maximum=64, minimum=4, cooldown_seconds=0)
    for _ in range(10):
        fast.on_overload()
    assert fast.limit == 4


FLOW = Flow("normal", "t", "b")


def test_success_adds_about_one_per_round_up_to_the_maximum() -> None:
    limit = AdaptiveLimit(maximum=20, cooldown_seconds=0)
    limit.on_overload()
    assert limit.limit == 10
    for _ in range(10):
        limit.on_success()
    assert 10.9 < limit.limit < 11.1
    for _ in range(10_000):
        limit.on_success()
    assert limit.limit == 20


async def test_slots_are_bounded_by_the_limit_and_handed_out_in_order() -> None:
    limit = AdaptiveLimit(maximum=2)
    order: list[int] = []
    release = asyncio.Event()

    async def worker(number: int) -> None:
        async with holding(limit, FLOW):
            order.append(number)
            await release.wait()

    tasks = [asyncio.create_task(worker(n)) for n in range(5)]
    await asyncio.sleep(0.01)
    assert order == [0, 1]
    assert limit.in_flight == 2
    release.set()
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3, 4]
    assert limit.in_flight == 0


async def test_a_cancelled_waiter_leaks_no_slot() -> None:
    limit = AdaptiveLimit(maximum=1)
    await limit.acquire(FLOW)
    waiter = asyncio.create_task(limit.acquire(FLOW))
    await asyncio.sleep(0.01)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    limit.release()
    assert (limit.in_flight, limit.waiting) == (0, 0)
    async with holding(limit, FLOW):
        assert limit.in_flight == 1


async def test_a_lower_limit_admits_fewer_until_it_grows_again() -> None:
    limit = AdaptiveLimit(maximum=4, cooldown_seconds=0)
    limit.on_overload()  # 2
    entered = 0

    async def worker() -> None:
        nonlocal entered
        async with holding(limit, FLOW):
            entered += 1
            await asyncio.sleep(0.05)

    tasks = [asyncio.create_task(worker()) for _ in range(4)]
    await asyncio.sleep(0.01)
    assert entered == 2
    await asyncio.gather(*tasks)
    assert entered == 4


async def test_a_closed_gate_admits_nothing_and_a_rising_cap_doubles_from_the_minimum() -> None:
    limit = AdaptiveLimit(maximum=64, minimum=1)
    limit.admit(0)
    waiting = asyncio.create_task(limit.acquire(FLOW))
    await asyncio.sleep(0.01)
    assert (limit.closed, limit.in_flight, limit.waiting) == (True, 0, 1), "nothing new goes out"
    caps = []
    for _ in range(6):
        limit.admit(20)
        caps.append(limit.cap)
    await waiting
    assert caps == [1, 2, 4, 8, 16, 20], "reopened gradually, never all at once"
    limit.admit(5)
    assert limit.room == 5, "a lower cap holds at once"
    limit.release()


def test_load_sums_the_vllm_series_and_is_unreadable_without_any() -> None:
    text = (
        "# TYPE vllm:num_requests_waiting gauge\n"
        'vllm:num_requests_waiting{model_name="a"} 3.0\n'
        'vllm:num_requests_waiting{model_name="b"} 4.0\n'
        "# TYPE vllm:num_requests_running gauge\n"
        'vllm:num_requests_running{model_name="a"} 9.0\n'
        "# TYPE vllm:gpu_cache_usage_perc gauge\n"
        'vllm:gpu_cache_usage_perc{model_name="a"} 0.5\n'
    )
    load = load_from_metrics(text)
    assert (load.waiting, load.running, load.kv_cache) == (7.0, 9.0, 0.5)
    with pytest.raises(Unreadable):
        load_from_metrics("# TYPE other gauge\nother 1\n")


async def test_a_saturated_server_makes_the_dispatcher_back_off() -> None:
    # One slot, 0.15 s a request: the gate's cap starts at the minimum and doubles while the
    # server has room; once requests queue on it past the threshold, the cap falls again.
    simulator = SimulatorSettings(port=0, capacity=1, latency_seconds=0.15)
    async with running_simulator(simulator) as sim:
        gateway_settings = GatewaySettings(
            url=sim.url,
            max_concurrency=12,
            metrics_url=f"{sim.url}/metrics",
            saturation_waiting_threshold=2,
            metrics_poll_seconds=0.2,
        )
        settings = ProcessorSettings(global_inference_gateway=gateway_settings, max_in_flight=12)
        dispatcher = Dispatcher(settings)
        gateway = dispatcher.gateway(gateway_settings)
        body = b'{"model": "sim-model", "messages": [{"role": "user", "content": "hi"}]}'
        caps: list[float] = []
        try:
            sends = [
                dispatcher.send(gateway, "/v1/chat/completions", f"r{n}", body, {})
                for n in range(12)
            ]
            sending = asyncio.gather(*sends)
            while not sending.done():
                caps.append(gateway.limit.cap)
                await asyncio.sleep(0.02)
            lines = await sending
        finally:
            await dispatcher.close()
    peak = caps.index(max(caps))
    assert max(caps) > 3, "the cap rose while the server had room"
    assert min(caps[peak:]) < max(caps), "and fell when requests waited on the server"
    assert all(line is not None and line.succeeded for line in lines)


async def test_a_closed_dispatcher_sends_nothing_and_opens_no_session() -> None:
    """A request that reaches the dispatcher after it closed (its processor is stopping) is
    not sent and gets no result, so its next owner sends it; no session is opened again."""
    async with running_simulator(SimulatorSettings(port=0)) as sim:
        gateway_settings = GatewaySettings(url=sim.url)
        dispatcher = Dispatcher(ProcessorSettings(global_inference_gateway=gateway_settings))
        gateway = dispatcher.gateway(gateway_settings)
        body = b'{"model": "sim-model", "messages": [{"role": "user", "content": "hi"}]}'
        sent = await dispatcher.send(gateway, "/v1/chat/completions", "before", body, {})
        assert sent is not None
        assert sent.succeeded
        await dispatcher.close()

        late = await dispatcher.send(gateway, "/v1/chat/completions", "after", body, {})
        other = dispatcher.gateway(GatewaySettings(url=f"{sim.url}/other"))
        later = await dispatcher.send(other, "/v1/chat/completions", "later", body, {})

        assert late is None
        assert later is None
        assert gateway.session.closed  # the closed one, not a new one
        assert sim.stats().requests == 1
