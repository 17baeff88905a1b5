"""The five text endpoints (vLLM's): each reads its request into a Job and writes its OpenAI
body. The image and video endpoints, in media.py, are built the same way.

Reading happens before the simulator knows the model's behaviour (the model is in the body), so
a Job keeps the output length the request asked for, if any; the server fills in the model's
default and writes the body once the request's time has passed.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import itertools
import math
import os
import struct
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import msgspec

from batch_gateway.simulator import bodies
from batch_gateway.simulator.inputs import (
    ChatRequest,
    CompletionRequest,
    EmbeddingRequest,
    InvalidBody,
    ModerationRequest,
    ResponsesRequest,
    chat_prompt_tokens,
    decode,
    prompt_tokens,
    prompts,
    words_in,
)

EMBEDDING_DIMENSIONS = 16
VOCABULARY = [
    "the",
    "simulated",
    "model",
    "answers",
    "every",
    "request",
    "with",
    "these",
    "words",
    "in",
    "this",
    "order",
    "so",
    "that",
    "a",
    "test",
    "can",
    "count",
    "them",
    "and",
    "a",
    "benchmark",
    "spends",
    "no",
    "time",
    "generating",
    "text",
]
MODERATION_CATEGORIES = (
    "harassment", "harassment/threatening", "hate", "hate/threatening", "illicit",
    "illicit/violent", "self-harm", "self-harm/instructions", "self-harm/intent", "sexual",
    "sexual/minors", "violence", "violence/graphic",
)  # fmt: skip


class Job(msgspec.Struct):
    model: str
    prompt_tokens: int
    # What the request asked for (`max_tokens` and siblings), or None for the model's default.
    requested_output_tokens: int | None
    # How many texts the request generates (n choices x prompts); 0 for embeddings, moderations.
    outputs: int
    request: Any
    # What a prefix cache may hold of the prompt (a chat's first message, when more follow),
    # and how many of its tokens it held for this request.
    prefix: str | None = None
    prefix_tokens: int = 0
    cached_tokens: int = 0

    @property
    def finish_reason(self) -> str:
        """Our model writes until the limit it is given, else until its default length."""
        return "stop" if self.requested_output_tokens is None else "length"

    def output_tokens_each(self, default: int) -> int:
        if self.outputs == 0:
            return 0
        return default if self.requested_output_tokens is None else self.requested_output_tokens


class Endpoint(NamedTuple):
    read: Callable[[bytes], Job]
    # (job, output tokens of each generated text, unix time) -> body
    write: Callable[[Job, int, int], bodies.Body]


def new_id(prefix: str) -> str:
    return prefix + os.urandom(12).hex()


@functools.lru_cache(maxsize=1024)
def generated_text(tokens: int) -> str:
    """`tokens` words (so that a whitespace split counts them back)."""
    return " ".join(itertools.islice(itertools.cycle(VOCABULARY), tokens))


_chat_decoder = msgspec.json.Decoder(ChatRequest)
_completion_decoder = msgspec.json.Decoder(CompletionRequest)
_embedding_decoder = msgspec.json.Decoder(EmbeddingRequest)
_responses_decoder = msgspec.json.Decoder(ResponsesRequest)
_moderation_decoder = msgspec.json.Decoder(ModerationRequest)


def read_chat(raw: bytes) -> Job:
    request: ChatRequest = decode(raw, _chat_decoder)
    requested = request.max_completion_tokens
    if requested is None:
        requested = request.max_tokens
    job = Job(request.model, chat_prompt_tokens(request), requested, request.n, request)
    first = request.messages[0].content if len(request.messages) > 1 else None
    if isinstance(first, str):
        job.prefix, job.prefix_tokens = first, len(first.split())
    return job


def write_chat(job: Job, tokens: int, created: int) -> bodies.ChatCompletion:
    text = generated_text(tokens)
    choices = [
        bodies.ChatChoice(
            index=index,
            message=bodies.AssistantMessage(content=text),
            finish_reason=job.finish_reason,
        )
        for index in range(job.outputs)
    ]
    completion_tokens = tokens * job.outputs
    usage = bodies.ChatUsage(
        prompt_tokens=job.prompt_tokens,
        completion_tokens=completion_tokens,
        total_tokens=job.prompt_tokens + completion_tokens,
        prompt_tokens_details=bodies.PromptTokensDetails(cached_tokens=job.cached_tokens),
    )
    return bodies.ChatCompletion(
        id=new_id("chatcmpl-"), created=created, model=job.model, choices=choices, usage=usage
    )


def read_completion(raw: bytes) -> Job:
    request: CompletionRequest = decode(raw, _completion_decoder)
    items = prompts(request.prompt, "prompt")
    tokens = sum(prompt_tokens(item) for item in items)
    return Job(request.model, tokens, request.max_tokens, request.n * len(items), request)


def write_completion(job: Job, tokens: int, created: int) -> bodies.Completion:
    text = generated_text(tokens)
    choices = [
        bodies.CompletionChoice(text=text, index=index, finish_reason=job.finish_reason)
        for index in range(job.outputs)
    ]
    completion_tokens = tokens * job.outputs
    usage = bodies.CompletionUsage(
        prompt_tokens=job.prompt_tokens,
        completion_tokens=completion_tokens,
        total_tokens=job.prompt_tokens + completion_tokens,
    )
    return bodies.Completion(
        id=new_id("cmpl-"), created=created, model=job.model, choices=choices, usage=usage
    )


def read_embedding(raw: bytes) -> Job:
    request: EmbeddingRequest = decode(raw, _embedding_decoder)
    if request.encoding_format not in ("float", "base64"):
        raise InvalidBody("`encoding_format` must be `float` or `base64`.", "encoding_format")
    items = prompts(request.input, "input")
    tokens = sum(prompt_tokens(item) for item in items)
    return Job(request.model, tokens, None, 0, (request, items))


def write_embedding(job: Job, _tokens: int, _created: int) -> bodies.EmbeddingList:
    request, items = job.request
    dimensions = request.dimensions or EMBEDDING_DIMENSIONS
    data = [
        bodies.Embedding(
            index=index, embedding=_embedding(item, dimensions, request.encoding_format)
        )
        for index, item in enumerate(items)
    ]
    usage = bodies.EmbeddingUsage(prompt_tokens=job.prompt_tokens, total_tokens=job.prompt_tokens)
    return bodies.EmbeddingList(data=data, model=job.model, usage=usage)


def _embedding(item: str | list[int], dimensions: int, encoding: str) -> list[float] | str:
    """A unit vector that depends only on the input: equal inputs, equal embeddings."""
    seed = item.encode() if isinstance(item, str) else msgspec.json.encode(item)
    digest = hashlib.shake_128(seed).digest(dimensions)
    vector = [(byte - 127.5) / 127.5 for byte in digest]
    norm = math.sqrt(sum(value * value for value in vector)) or 1.0
    vector = [value / norm for value in vector]
    if encoding == "base64":
        return base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()
    return vector


def read_responses(raw: bytes) -> Job:
    request: ResponsesRequest = decode(raw, _responses_decoder)
    tokens = words_in(request.input) + words_in(request.instructions)
    return Job(request.model, tokens, request.max_output_tokens, 1, request)


def write_responses(job: Job, tokens: int, created: int) -> bodies.Response:
    request: ResponsesRequest = job.request
    # Our model always writes up to the limit it is given; OpenAI calls that "incomplete".
    status: Literal["completed", "incomplete"] = (
        "completed" if job.requested_output_tokens is None else "incomplete"
    )
    message = bodies.OutputMessage(
        id=new_id("msg_"), status=status, content=[bodies.OutputText(text=generated_text(tokens))]
    )
    usage = bodies.ResponseUsage(
        input_tokens=job.prompt_tokens,
        output_tokens=tokens,
        total_tokens=job.prompt_tokens + tokens,
    )
    return bodies.Response(
        id=new_id("resp_"),
        created_at=created,
        status=status,
        incomplete_details=None if status == "completed" else bodies.IncompleteDetails(),
        instructions=request.instructions,
        max_output_tokens=request.max_output_tokens,
        model=job.model,
        output=[message],
        usage=usage,
    )


def read_moderation(raw: bytes) -> Job:
    request: ModerationRequest = decode(raw, _moderation_decoder)
    value = request.input
    # A list of strings is one input each; a list of text/image parts is one input.
    items: list[Any] = (
        value if isinstance(value, list) and value and isinstance(value[0], str) else [value]
    )
    return Job(request.model, words_in(value), None, 0, items)


_NOT_FLAGGED = dict.fromkeys(MODERATION_CATEGORIES, False)
_LOW_SCORES = dict.fromkeys(MODERATION_CATEGORIES, 1e-6)
_TEXT_INPUT = {category: ["text"] for category in MODERATION_CATEGORIES}


def write_moderation(job: Job, _tokens: int, _created: int) -> bodies.Moderation:
    results = [
        bodies.ModerationResult(
            categories=_NOT_FLAGGED,
            category_scores=_LOW_SCORES,
            category_applied_input_types=_TEXT_INPUT,
        )
        for _ in job.request
    ]
    return bodies.Moderation(id=new_id("modr-"), model=job.model, results=results)


TEXT_ENDPOINTS: dict[str, Endpoint] = {
    "/v1/chat/completions": Endpoint(read_chat, write_chat),
    "/v1/completions": Endpoint(read_completion, write_completion),
    "/v1/embeddings": Endpoint(read_embedding, write_embedding),
    "/v1/responses": Endpoint(read_responses, write_responses),
    "/v1/moderations": Endpoint(read_moderation, write_moderation),
}
