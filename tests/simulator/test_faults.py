"""Injected faults: each kind at rate 1, timeouts both ways, per-model behaviour, and seeds that
make the faults reproducible."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from batch_gateway.settings import SettingsError
from batch_gateway.simulator import (
    BATCH_REQUEST_HEADER,
    ModelBehaviour,
    RunningSimulator,
    SimulatorSettings,
)
from batch_gateway.simulator.faults import Dice
from batch_gateway.simulator.settings import behaviour_for
from tests.simulator.conftest import CHAT, StartSimulator, chat_body, post


async def test_429_carries_retry_after(
    http: aiohttp.ClientSession, start_simulator: StartSimulator
) -> None:
    simulator = await start_simulator(rate_429=1.0, retry_after_seconds=3)
    async with http.post(simulator.url + CHAT, json=chat_body()) as response:
        assert response.status == 429
        assert response.headers["Retry-After"] == "3"
        answer = await response.json()
    assert answer["error"]["code"] == "rate_limit_exceeded"
    assert set(answer["error"]) == {"message", "type", "param", "code"}


@pytest.mark.parametrize("status", [500, 503])
async def test_server_errors(
    http: aiohttp.ClientSession, start_simulator: StartSimulator, status: int
) -> None:
    simulator = await start_simulator(**{f"rate_{status}": 1.0})
    code, answer = await post(http, simulator, CHAT, chat_body())
    assert code == status
    assert answer["error"]["type"] == "server_error"
    assert simulator.stats().by_status == {str(status): 1}


async def test_dropped_connection_is_a_connection_error(
    http: aiohttp.ClientSession, start_simulator: StartSimulator
) -> None:
    simulator = await start_simulator(rate_disconnect=1.0)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await post(http, simulator, CHAT, chat_body())
    assert simulator.stats().by_status == {"disconnect": 1}


async def test_timeout_holds_then_answers_504(
    http: aiohttp.ClientSession, start_simulator: StartSimulator
) -> None:
    simulator = await start_simulator(rate_timeout=1.0, timeout_seconds=0.3)
    started = time.monotonic()
    status, answer = await post(http, simulator, CHAT, chat_body())
    assert time.monotonic() - started >= 0.3
    assert status == 504
    assert answer["error"]["code"] == "timeout"


async def test_timeout_outlasts_a_client_that_gives_up(
    http: aiohttp.ClientSession, start_simulator: StartSimulator
) -> None:
    simulator = await start_simulator(rate_timeout=1.0, timeout_seconds=30)
    with pytest.raises(asyncio.TimeoutError):
        async with http.post(
            simulator.url + CHAT, json=chat_body(), timeout=aiohttp.ClientTimeout(total=0.2)
        ):
            pass
    for _ in range(50):
        if simulator.stats().by_status:
            break
        await asyncio.sleep(0.01)
    # The simulator noticed the client leave (and would have freed its slot).
    assert simulator.stats().by_status == {"client_gone": 1}


async def test_stopping_does_not_wait_for_held_requests(start_simulator: StartSimulator) -> None:
    simulator = await start_simulator(rate_timeout=1.0, timeout_seconds=30)
    async with aiohttp.ClientSession() as http:
        held = asyncio.create_task(post(http, simulator, CHAT, chat_body()))
        await asyncio.sleep(0.1)
        started = time.monotonic()
        await simulator.stop()
        assert time.monotonic() - started < 2.0
        status, _ = await held
    assert status == 504


async def statuses(
    http: aiohttp.ClientSession, simulator: RunningSimulator, keys: list[str | None]
) -> list[int]:
    result: list[int] = []
    for key in keys:
        headers = None if key is None else {BATCH_REQUEST_HEADER: key}
        async with http.post(simulator.url + CHAT, json=chat_body(), headers=headers) as response:
            result.append(response.status)
    return result


async def test_same_seed_same_faults(
    http: aiohttp.ClientSession, start_simulator: StartSimulator
) -> None:
    faults = {"rate_429": 0.3, "rate_500": 0.2, "rate_503": 0.1}
    first = await start_simulator(seed=7, **faults)
    second = await start_simulator(seed=7, **faults)
    other = await start_simulator(seed=8, **faults)
    keys: list[str | None] = [None] * 40
    expected = await statuses(http, first, keys)
    assert {429, 500, 503, 200} <= set(expected)
    assert await statuses(http, second, keys) == expected
    assert await statuses(http, other, keys) != expected
    first.reset_stats()
    assert await statuses(http, first, keys) == expected


async def test_seeded_faults_follow_the_request_not_the_arrival_order(
    http: aiohttp.ClientSession, start_simulator: StartSimulator
) -> None:
    first = await start_simulator(seed=11, rate_429=0.5)
    second = await start_simulator(seed=11, rate_429=0.5)
    keys: list[str | None] = [f"batch_1/request-{number}" for number in range(30)]
    forwards = dict(zip(keys, await statuses(http, first, keys), strict=True))
    backwards = dict(zip(keys[::-1], await statuses(http, second, keys[::-1]), strict=True))
    assert forwards == backwards
    # A retry is a new attempt, with a draw of its own: the failed ones do not all fail again.
    failed = [key for key, status in forwards.items() if status == 429]
    assert 0 < len(failed) < len(keys)
    assert 200 in await statuses(http, first, failed)


async def test_models_behave_as_configured(
    http: aiohttp.ClientSession, start_simulator: StartSimulator
) -> None:
    simulator = await start_simulator(
        models={
            "slow": ModelBehaviour(latency_seconds=0.3),
            # Unset rates are inherited: this model's 429 rate must be zeroed for 503s to fit.
            "flaky": ModelBehaviour(rate_429=0.0, rate_503=1.0),
        },
        rate_429=1.0,
    )
    started = time.monotonic()
    status, _ = await post(http, simulator, CHAT, {**chat_body(), "model": "slow"})
    # "slow" inherits the server-wide 429 rate; the fault comes before the latency.
    assert status == 429
    assert time.monotonic() - started < 0.3
    status, _ = await post(http, simulator, CHAT, {**chat_body(), "model": "flaky"})
    assert status == 503
    status, _ = await post(http, simulator, CHAT, {**chat_body(), "model": "any-other"})
    assert status == 429


async def test_latency_per_model_and_per_token(
    http: aiohttp.ClientSession, start_simulator: StartSimulator
) -> None:
    simulator = await start_simulator(
        models={
            "slow": ModelBehaviour(latency_seconds=0.3),
            "tokens": ModelBehaviour(latency_per_output_token_seconds=0.05, max_output_tokens=4),
        }
    )
    for model, at_least, tokens in (("slow", 0.3, 16), ("tokens", 0.2, 4), ("fast", 0.0, 16)):
        started = time.monotonic()
        status, answer = await post(http, simulator, CHAT, {**chat_body(), "model": model})
        elapsed = time.monotonic() - started
        assert status == 200
        assert elapsed >= at_least
        assert answer["usage"]["completion_tokens"] == tokens
    started = time.monotonic()
    await post(http, simulator, CHAT, {**chat_body(), "model": "fast"})
    assert time.monotonic() - started < 0.2


def test_fault_rates_may_not_add_up_to_more_than_one() -> None:
    with pytest.raises(SettingsError, match="add up to"):
        SimulatorSettings(rate_429=0.6, rate_500=0.5)
    with pytest.raises(SettingsError, match="flaky"):
        SimulatorSettings(rate_429=0.6, models={"flaky": ModelBehaviour(rate_503=0.5)})


def test_jitter_stays_within_its_fraction_and_follows_the_seed() -> None:
    settings = SimulatorSettings(latency_seconds=0.1, jitter=0.5, seed=5)
    behaviour = behaviour_for(settings, None)
    first, second, unseeded = Dice(5), Dice(5), Dice(None)
    delays = [first.latency(behaviour, 16) for _ in range(200)]
    assert all(0.05 <= delay <= 0.15 for delay in delays)
    assert max(delays) - min(delays) > 0.05
    assert [second.latency(behaviour, 16) for _ in range(200)] == delays
    assert [unseeded.latency(behaviour, 16) for _ in range(200)] != delays
