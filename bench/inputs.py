"""Plausible batch input files: chat-completions requests with prompts of varied lengths."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Final

import msgspec

CHAT: Final = "/v1/chat/completions"
MODELS = ("meta-llama/Llama-3.1-8B-Instruct", "Qwen/Qwen2.5-7B-Instruct", "mistral-small")
WORDS = (
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "lazy",
    "dog",
    "batch",
    "gateway",
    "inference",
    "request",
    "token",
    "model",
    "summarise",
    "translate",
    "classify",
    "explain",
    "compare",
    "list",
    "describe",
    "customer",
    "order",
    "invoice",
    "support",
    "ticket",
    "review",
    "product",
    "feature",
    "release",
    "note",
    "paragraph",
    "sentence",
    "answer",
    "question",
)
# One prompt in ten is not plain English, so checking UTF-8 beyond ASCII is measured too.
FOREIGN_WORDS = ("café", "naïve", "Größe", "日本語", "данные", "señal", "emoji 🙂")
SYSTEM_PROMPT = "You are a helpful assistant. Answer concisely and cite the input when useful."


def chat_lines(max_words: int, seed: int = 7) -> Iterator[bytes]:
    """Endless JSONL lines (newline included); a line is about `max_words` * 4 bytes on
    average, its prompt anything from 10 to `max_words` words. Seeded: runs see the same bytes."""
    rng = random.Random(seed)
    encoder = msgspec.json.Encoder()
    number = 0
    while True:
        words = rng.choices(WORDS, k=rng.randint(10, max_words))
        if rng.random() < 0.1:
            words += rng.choices(FOREIGN_WORDS, k=rng.randint(1, 20))
        messages = [{"role": "user", "content": " ".join(words)}]
        if rng.random() < 0.5:
            messages.insert(0, {"role": "system", "content": SYSTEM_PROMPT})
        body: dict[str, object] = {
            "model": rng.choice(MODELS),
            "messages": messages,
            "max_tokens": rng.choice((64, 256, 1024)),
        }
        if rng.random() < 0.3:
            body["temperature"] = round(rng.random(), 2)
        line = {"custom_id": f"request-{number}", "method": "POST", "url": CHAT, "body": body}
        yield encoder.encode(line) + b"\n"
        number += 1


EMBEDDINGS: Final = "/v1/embeddings"
EMBEDDING_MODELS = ("BAAI/bge-m3", "intfloat/e5-mistral-7b-instruct")


def embedding_lines(max_words: int, seed: int = 7) -> Iterator[bytes]:
    """Endless `/v1/embeddings` JSONL lines, shaped like `chat_lines`: one text of 10 to
    `max_words` words, or in one line of five a list of two to eight shorter texts."""
    rng = random.Random(seed)
    encoder = msgspec.json.Encoder()
    number = 0

    def text(words: int) -> str:
        chosen = rng.choices(WORDS, k=words)
        if rng.random() < 0.1:
            chosen += rng.choices(FOREIGN_WORDS, k=rng.randint(1, 20))
        return " ".join(chosen)

    while True:
        words = rng.randint(10, max_words)
        texts: str | list[str] = text(words)
        if rng.random() < 0.2:
            count = rng.randint(2, 8)
            texts = [text(max(1, words // count)) for _ in range(count)]
        body = {"model": rng.choice(EMBEDDING_MODELS), "input": texts}
        line = {"custom_id": f"request-{number}", "method": "POST", "url": EMBEDDINGS, "body": body}
        yield encoder.encode(line) + b"\n"
        number += 1


def round_requests(round_number: int, batch: int, lines: int) -> bytes:
    """`lines` short chat requests for the simulator's model, their custom ids naming the round
    and the batch (`r3-b1-17`): the input of a round of the soak and memory benchmarks."""
    body = {"model": "sim-model", "messages": [{"role": "user", "content": "hi"}]}
    rows = (
        {
            "custom_id": f"r{round_number}-b{batch}-{line}",
            "method": "POST",
            "url": CHAT,
            "body": body,
        }
        for line in range(lines)
    )
    return b"".join(msgspec.json.encode(row) + b"\n" for row in rows)
