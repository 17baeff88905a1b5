"""/v1/models, strict models, /health, and /stats: what reached the simulator, counted per
X-Batch-Request value so that crash tests can tell how often each request was sent."""

from __future__ import annotations

import aiohttp
from openai import AsyncOpenAI

from batch_gateway.simulator import BATCH_REQUEST_HEADER, ModelBehaviour, RunningSimulator
from tests.simulator.conftest import CHAT, StartSimulator, chat_body, post


async def test_models_lists_served_and_configured_models(
    http: aiohttp.ClientSession, start_simulator: StartSimulator
) -> None:
    simulator = await start_simulator(
        served_models=["llama", "qwen"], models={"qwen": ModelBehaviour(), "slow": ModelBehaviour()}
    )
    async with http.get(simulator.url + "/v1/models") as response:
        assert response.status == 200
        listing = await response.json()
    assert listing["object"] == "list"
    assert [model["id"] for model in listing["data"]] == ["llama", "qwen", "slow"]
    assert {model["object"] for model in listing["data"]} == {"model"}
    async with http.get(simulator.url + "/v1/models/slow") as response:
        assert (await response.json())["id"] == "slow"
    async with http.get(simulator.url + "/v1/models/nope") as response:
        assert response.status == 404


async def test_unknown_models_are_served_unless_strict(
    http: aiohttp.ClientSession, start_simulator: StartSimulator
) -> None:
    lenient = await start_simulator()
    strict = await start_simulator(strict_models=True, served_models=["sim-model"])
    status, _ = await post(http, lenient, CHAT, {**chat_body(), "model": "anything"})
    assert status == 200
    status, answer = await post(http, strict, CHAT, {**chat_body(), "model": "anything"})
    assert status == 404
    assert answer["error"]["code"] == "model_not_found"
    assert answer["error"]["param"] == "model"
    status, _ = await post(http, strict, CHAT, chat_body())
    assert status == 200


async def test_stats_count_each_batch_request(
    http: aiohttp.ClientSession, simulator: RunningSimulator
) -> None:
    for key in ("batch_a/r1", "batch_a/r2", "batch_a/r1"):
        await post(http, simulator, CHAT, chat_body(), headers={BATCH_REQUEST_HEADER: key})
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    await post(http, simulator, CHAT, chat_body(), headers={"traceparent": traceparent})
    await post(http, simulator, "/v1/embeddings", {"model": "e", "input": "x"})
    await post(http, simulator, CHAT, {"no": "model"})
    async with http.post(simulator.url + "/v1/rerank", json={}) as response:
        assert response.status == 404
    async with http.get(simulator.url + "/stats") as response:
        stats = await response.json()
    assert stats == {
        "requests": 7,
        "by_path": {CHAT: 5, "/v1/embeddings": 1, "/v1/rerank": 1},
        "by_status": {"200": 5, "400": 1, "404": 1},
        "by_batch_request": {"batch_a/r1": 2, "batch_a/r2": 1},
        "by_trace_id": {"0af7651916cd43dd8448eb211c80319c": 1},
        "by_fairness_id": {},
        "by_objective": {},
        "with_slo": 0,
        "peak_running": 1,
    }
    assert simulator.stats().by_batch_request == stats["by_batch_request"]
    async with http.post(simulator.url + "/stats/reset") as response:
        assert response.status == 204
    assert simulator.stats().requests == 0
    assert simulator.stats().by_batch_request == {}
    assert simulator.stats().by_trace_id == {}


async def test_health(http: aiohttp.ClientSession, simulator: RunningSimulator) -> None:
    async with http.get(simulator.url + "/health") as response:
        assert response.status == 200
        assert await response.json() == {"status": "ok"}


async def test_the_openai_sdk_accepts_every_answer(simulator: RunningSimulator) -> None:
    async with AsyncOpenAI(
        base_url=simulator.base_url, api_key="x", max_retries=0, _strict_response_validation=True
    ) as client:
        chat = await client.chat.completions.create(
            model="sim-model", messages=[{"role": "user", "content": "Hi there"}]
        )
        assert chat.usage is not None
        assert chat.usage.prompt_tokens == 2
        completion = await client.completions.create(model="sim-model", prompt="Hi", max_tokens=2)
        assert completion.choices[0].text == "the simulated"
        # Left to itself the SDK asks for base64 and decodes it, but its strict validation
        # checks the body first and wants floats (against OpenAI too): ask for floats.
        embeddings = await client.embeddings.create(
            model="sim-model", input=["a", "b"], encoding_format="float"
        )
        assert [len(item.embedding) for item in embeddings.data] == [16, 16]
        response = await client.responses.create(model="sim-model", input="Hi")
        assert response.output_text
        moderation = await client.moderations.create(input="Hi")
        assert not moderation.results[0].flagged
        models = [model.id async for model in client.models.list()]
        assert models == ["sim-model"]
