"""The simulator as a shared server: prefill per uncached prompt token, a prefix cache with its
vLLM counters, decoding slowed by load, requests shed as llm-d's router does, router hints."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from batch_gateway.simulator import RunningSimulator
from batch_gateway.simulator.stats import DROPPED_HEADER
from tests.simulator.conftest import CHAT, StartSimulator

SYSTEM = " ".join(["policy"] * 100)  # a 100-token system prompt


def _chat(system: str, user: str = "hello") -> dict[str, Any]:
    messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
    return {"model": "sim-model", "messages": messages}


async def _timed(
    http: aiohttp.ClientSession, simulator: RunningSimulator, body: dict[str, Any]
) -> tuple[float, dict[str, Any]]:
    started = time.monotonic()
    async with http.post(simulator.url + CHAT, json=body) as response:
        assert response.status == 200
        answer = await response.json()
    return time.monotonic() - started, answer


async def _counter(http: aiohttp.ClientSession, simulator: RunningSimulator, name: str) -> float:
    async with http.get(simulator.url + "/metrics") as response:
        text = await response.text()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name + "_total":
                return sample.value
    raise AssertionError(f"{name} is not exported")


async def test_a_cached_prefix_skips_its_prefill_and_is_counted_as_vllm_does(
    http: aiohttp.ClientSession, start_simulator: StartSimulator
) -> None:
    simulator = await start_simulator(latency_per_prompt_token_seconds=0.002, prefix_cache_size=1)

    cold, first = await _timed(http, simulator, _chat(SYSTEM))
    warm, second = await _timed(http, simulator, _chat(SYSTEM, "another question"))
    await _timed(http, simulator, _chat("a different system prompt"))  # evicts SYSTEM
    evicted, third = await _timed(http, simulator, _chat(SYSTEM))

    assert cold > 0.2, "100 tokens of prefill at 2 ms each"
    assert evicted > 0.2
    assert warm < cold / 2
    cached = [a["usage"]["prompt_tokens_details"]["cached_tokens"] for a in (first, second, third)]
    assert cached == [0, 100, 0]
    assert await _counter(http, simulator, "vllm:prefix_cache_hits") == 100
    assert await _counter(http, simulator, "vllm:prefix_cache_queries") == 100 + 100 + 4 + 100


async def test_decoding_slows_with_the_share_of_busy_slots(
    http: aiohttp.ClientSession, start_simulator: StartSimulator
) -> None:
    simulator = await start_simulator(
        capacity=4, latency_per_output_token_seconds=0.01, load_slowdown=1.0, max_output_tokens=20
    )
    alone, _ = await _timed(http, simulator, _chat("x"))
    together = await asyncio.gather(*(_timed(http, simulator, _chat("x")) for _ in range(4)))

    assert alone >= 0.24, "20 tokens at 10 ms, one slot of four busy: x1.25"
    assert max(seconds for seconds, _ in together) >= 0.38, "all four busy: x2"


async def test_a_shed_request_says_so_as_llm_ds_router_does_and_hints_are_counted(
    http: aiohttp.ClientSession, start_simulator: StartSimulator
) -> None:
    simulator = await start_simulator(rate_dropped=1.0)
    hints = {
        "x-gateway-inference-fairness-id": "tenant-a",
        "x-gateway-inference-objective": "batch",
        "x-slo-ttft-ms": "60000",
    }
    async with http.post(simulator.url + CHAT, json=_chat("x"), headers=hints) as response:
        assert response.status == 429
        assert DROPPED_HEADER in response.headers

    stats = simulator.stats()
    assert (stats.by_fairness_id, stats.by_objective, stats.with_slo) == (
        {"tenant-a": 1},
        {"batch": 1},
        1,
    )
