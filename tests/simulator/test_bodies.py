"""Each endpoint answers with OpenAI's body, checked by the `openai` SDK's own types in strict
mode, with usage counted from the input: prompt tokens are the words of the input text, output
tokens what the request asked for or the default (16)."""

from __future__ import annotations

import base64
import struct

import aiohttp
import pytest
from openai.types import Completion, CreateEmbeddingResponse, ModerationCreateResponse
from openai.types.chat import ChatCompletion
from openai.types.responses import Response

from batch_gateway.simulator import RunningSimulator
from tests.simulator.conftest import CHAT, chat_body, post


async def test_chat_completion_counts_words_of_every_message(
    http: aiohttp.ClientSession, simulator: RunningSimulator
) -> None:
    body = {
        "model": "sim-model",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": [{"type": "text", "text": "Name three  colours"}]},
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]},
        ],
    }
    status, answer = await post(http, simulator, CHAT, body)
    assert status == 200
    completion = ChatCompletion.model_validate(answer, strict=True)
    assert completion.id.startswith("chatcmpl-")
    assert completion.model == "sim-model"
    [choice] = completion.choices
    assert choice.message.role == "assistant"
    assert choice.finish_reason == "stop"
    assert choice.message.content is not None
    assert len(choice.message.content.split()) == 16
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (6, 16)
    assert completion.usage.total_tokens == 22
    assert completion.usage.prompt_tokens_details is not None
    assert completion.usage.prompt_tokens_details.cached_tokens == 0
    assert completion.usage.completion_tokens_details is not None
    assert completion.usage.completion_tokens_details.reasoning_tokens == 0


@pytest.mark.parametrize("limit", ["max_tokens", "max_completion_tokens"])
async def test_chat_output_length_follows_the_request(
    http: aiohttp.ClientSession, simulator: RunningSimulator, limit: str
) -> None:
    status, answer = await post(http, simulator, CHAT, chat_body("one two", n=3, **{limit: 5}))
    assert status == 200
    completion = ChatCompletion.model_validate(answer, strict=True)
    assert [choice.index for choice in completion.choices] == [0, 1, 2]
    assert {choice.finish_reason for choice in completion.choices} == {"length"}
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 15
    assert completion.usage.prompt_tokens == 2


async def test_completion(http: aiohttp.ClientSession, simulator: RunningSimulator) -> None:
    body = {"model": "sim-model", "prompt": ["a b c", [1, 2, 3, 4]], "max_tokens": 4}
    status, answer = await post(http, simulator, "/v1/completions", body)
    assert status == 200
    completion = Completion.model_validate(answer, strict=True)
    assert completion.id.startswith("cmpl-")
    assert completion.object == "text_completion"
    assert len(completion.choices) == 2
    assert all(len(choice.text.split()) == 4 for choice in completion.choices)
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (7, 8)


async def test_embeddings_are_deterministic_unit_vectors(
    http: aiohttp.ClientSession, simulator: RunningSimulator
) -> None:
    body = {"model": "embedder", "input": ["the same text", "another text here", "the same text"]}
    status, answer = await post(http, simulator, "/v1/embeddings", body)
    assert status == 200
    embeddings = CreateEmbeddingResponse.model_validate(answer, strict=True)
    vectors = [item.embedding for item in embeddings.data]
    assert [item.index for item in embeddings.data] == [0, 1, 2]
    assert all(len(vector) == 16 for vector in vectors)
    assert vectors[0] == vectors[2] != vectors[1]
    assert sum(value * value for value in vectors[0]) == pytest.approx(1.0)
    assert embeddings.usage.prompt_tokens == embeddings.usage.total_tokens == 9


async def test_embeddings_in_base64_and_other_dimensions(
    http: aiohttp.ClientSession, simulator: RunningSimulator
) -> None:
    floats = {"model": "embedder", "input": "some text", "dimensions": 8}
    _, as_floats = await post(http, simulator, "/v1/embeddings", floats)
    _, as_base64 = await post(
        http, simulator, "/v1/embeddings", {**floats, "encoding_format": "base64"}
    )
    packed = base64.b64decode(as_base64["data"][0]["embedding"])
    decoded = struct.unpack("<8f", packed)
    assert decoded == pytest.approx(as_floats["data"][0]["embedding"], rel=1e-6)


async def test_responses(http: aiohttp.ClientSession, simulator: RunningSimulator) -> None:
    body = {
        "model": "sim-model",
        "instructions": "Answer in French",
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "Hello there"}]}],
    }
    status, answer = await post(http, simulator, "/v1/responses", body)
    assert status == 200
    response = Response.model_validate(answer, strict=True)
    assert response.id.startswith("resp_")
    assert response.object == "response"
    assert response.status == "completed"
    assert len(response.output_text.split()) == 16
    assert response.output[0].type == "message"
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (5, 16)
    assert response.usage.total_tokens == 21
    assert response.usage.input_tokens_details.cached_tokens == 0
    assert response.usage.output_tokens_details.reasoning_tokens == 0


async def test_responses_cut_at_max_output_tokens_are_incomplete(
    http: aiohttp.ClientSession, simulator: RunningSimulator
) -> None:
    body = {"model": "sim-model", "input": "Hi", "max_output_tokens": 3}
    status, answer = await post(http, simulator, "/v1/responses", body)
    assert status == 200
    response = Response.model_validate(answer, strict=True)
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.usage is not None
    assert response.usage.output_tokens == 3


async def test_moderations(http: aiohttp.ClientSession, simulator: RunningSimulator) -> None:
    status, answer = await post(http, simulator, "/v1/moderations", {"input": ["a b", "c"]})
    assert status == 200
    moderation = ModerationCreateResponse.model_validate(answer, strict=True)
    assert moderation.id.startswith("modr-")
    assert moderation.model == "omni-moderation-latest"
    assert len(moderation.results) == 2
    assert not any(result.flagged for result in moderation.results)
    assert moderation.results[0].categories.self_harm is False
    assert answer["results"][0]["categories"]["self-harm/intent"] is False


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        (CHAT, [1, 2], None),
        (CHAT, "a string", None),
        (CHAT, {"messages": []}, "model"),
        (CHAT, {"model": "sim-model"}, "messages"),
        (CHAT, chat_body(max_tokens="many"), "max_tokens"),
        (CHAT, chat_body(stream=True), "stream"),
        ("/v1/completions", {"model": "m", "prompt": []}, "prompt"),
        ("/v1/embeddings", {"input": "text"}, "model"),
        ("/v1/embeddings", {"model": "m", "input": "x", "encoding_format": "hex"}, None),
        ("/v1/responses", {"input": "text"}, "model"),
        ("/v1/responses", {"model": "m", "input": "x", "stream": True}, "stream"),
        ("/v1/moderations", {"model": "m"}, "input"),
    ],
)
async def test_unusable_bodies_get_openai_400s(
    http: aiohttp.ClientSession,
    simulator: RunningSimulator,
    path: str,
    body: object,
    param: str | None,
) -> None:
    status, answer = await post(http, simulator, path, body)
    assert status == 400
    assert set(answer["error"]) == {"message", "type", "param", "code"}
    assert answer["error"]["type"] == "invalid_request_error"
    if param is not None:
        assert answer["error"]["param"] == param


async def test_body_that_is_not_json(
    http: aiohttp.ClientSession, simulator: RunningSimulator
) -> None:
    async with http.post(simulator.url + CHAT, data=b"{not json") as response:
        assert response.status == 400
        answer = await response.json()
    assert "JSON" in answer["error"]["message"]
