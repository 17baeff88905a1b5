"""Sending requests that share a prompt prefix together, so the server's prefix cache hits.

An inference server keeps the KV cache of recent prompts; a request that starts like one of
them skips that part of its prefill. A batch file often interleaves a few long system prompts
(or few-shot preambles), and sent in file order each request may find its prefix evicted by
the others. So a job reads its slice's requests into a buffer of at most `max_bytes`, orders
the buffer by the request's leading prompt bytes (a chat's messages, a completion's prompt; a
stable sort, so one prefix's requests keep their order) and sends it, then reads the next.
Requests with equal prefixes end up adjacent, and long common prefixes near each other.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec

from batch_gateway.results.requests import Request

# The leading bytes of a prompt that decide its place: enough for a system prompt's start.
KEY_BYTES = 1024


class _Prompt(msgspec.Struct):
    messages: list[msgspec.Raw] = msgspec.field(default_factory=list)
    prompt: msgspec.Raw | None = None
    input: msgspec.Raw | None = None


_decode = msgspec.json.Decoder(_Prompt).decode


def prefix_key(body: bytes) -> bytes:
    """The leading bytes of the request's prompt, as its JSON has them."""
    try:
        prompt = _decode(body)
    except msgspec.ValidationError:
        return b""  # an unusual body keeps its place among the others like it
    if prompt.messages:
        key = bytearray()
        for message in prompt.messages:
            key += message
            if len(key) >= KEY_BYTES:
                break
        return bytes(key[:KEY_BYTES])
    raw = prompt.prompt if prompt.prompt is not None else prompt.input
    return bytes(raw)[:KEY_BYTES] if raw is not None else b""


async def prefix_ordered(
    requests: AsyncIterator[Request], max_bytes: int
) -> AsyncIterator[Request]:
    """`requests` regrouped by prompt prefix within buffers of `max_bytes` of bodies (0: as
    they come)."""
    if max_bytes <= 0:
        async for request in requests:
            yield request
        return
    buffer: list[tuple[bytes, Request]] = []
    size = 0
    async for request in requests:
        buffer.append((prefix_key(request.body), request))
        size += len(request.body)
        if size >= max_bytes:
            for _, buffered in sorted(buffer, key=lambda item: item[0]):
                yield buffered
            buffer, size = [], 0
    for _, buffered in sorted(buffer, key=lambda item: item[0]):
        yield buffered
