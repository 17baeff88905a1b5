"""Capacity queues requests as a server's scheduler does, and /metrics shows it under vLLM's
names; each simulator keeps its own figures."""

from __future__ import annotations

import asyncio
import time

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from batch_gateway.simulator import ModelBehaviour, RunningSimulator
from tests.simulator.conftest import CHAT, StartSimulator, chat_body, post


async def scrape(http: aiohttp.ClientSession, simulator: RunningSimulator) -> dict[str, float]:
    """Every sample of /metrics for model "sim-model", by sample name (and `le` for buckets)."""
    async with http.get(simulator.url + "/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("model_name") != "sim-model":
                continue
            name = sample.name
            if "le" in sample.labels:
                name += f"[{sample.labels['le']}]"
            if "finished_reason" in sample.labels:
                name += f"[{sample.labels['finished_reason']}]"
            samples[name] = sample.value
    return samples


async def test_requests_beyond_capacity_wait_their_turn(
    http: aiohttp.ClientSession, start_simulator: StartSimulator
) -> None:
    simulator = await start_simulator(capacity=1, latency_seconds=0.2)
    started = time.monotonic()
    both = asyncio.gather(*(post(http, simulator, CHAT, chat_body()) for _ in range(2)))
    await asyncio.sleep(0.1)
    during = await scrape(http, simulator)
    results = await both
    assert time.monotonic() - started >= 0.4
    assert [status for status, _ in results] == [200, 200]
    assert during["vllm:num_requests_running"] == 1
    assert during["vllm:num_requests_waiting"] == 1
    assert during["vllm:kv_cache_usage_perc"] == 1.0
    after = await scrape(http, simulator)
    assert after["vllm:num_requests_running"] == after["vllm:num_requests_waiting"] == 0
    # The second request's end-to-end latency includes its time in the queue.
    assert after["vllm:e2e_request_latency_seconds_bucket[0.3]"] == 1
    assert after["vllm:e2e_request_latency_seconds_bucket[0.5]"] == 2


async def test_a_model_with_its_own_capacity_does_not_share_slots(
    http: aiohttp.ClientSession, start_simulator: StartSimulator
) -> None:
    simulator = await start_simulator(
        capacity=1, latency_seconds=0.2, models={"big": ModelBehaviour(capacity=2)}
    )
    started = time.monotonic()
    body = {**chat_body(), "model": "big"}
    await asyncio.gather(
        post(http, simulator, CHAT, body),
        post(http, simulator, CHAT, body),
        post(http, simulator, CHAT, chat_body()),
    )
    assert time.monotonic() - started < 0.4


async def test_counters_follow_what_was_served(
    http: aiohttp.ClientSession, start_simulator: StartSimulator
) -> None:
    simulator = await start_simulator()
    untouched = await start_simulator()
    await post(http, simulator, CHAT, chat_body("one two three"))
    await post(http, simulator, CHAT, chat_body("four five", max_tokens=4))
    await post(http, simulator, CHAT, chat_body(stream=True))
    samples = await scrape(http, simulator)
    assert samples["vllm:request_success_total[stop]"] == 1
    assert samples["vllm:request_success_total[length]"] == 1
    assert samples["vllm:prompt_tokens_total"] == 5
    assert samples["vllm:generation_tokens_total"] == 16 + 4
    assert samples["vllm:e2e_request_latency_seconds_count"] == 2
    assert samples["vllm:e2e_request_latency_seconds_bucket[+Inf]"] == 2
    assert samples["vllm:num_requests_running"] == 0
    # Each simulator has its own registry: figures never leak between simulators.
    assert await scrape(http, untouched) == {}
    assert "vllm:num_requests_waiting" in simulator.metrics_text()
