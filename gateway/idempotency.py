"""Idempotent batch creation with the `Idempotency-Key` header.

The OpenAI SDK retries a POST after a timeout or a 5xx; without this, a retry of a create
whose answer was lost starts a second batch and doubles the GPU bill. A key is claimed with
`SET NX` before the batch is created and remembers the batch id and a fingerprint of the
request for `ttl` seconds: the same key again returns the same batch, the same key with a
different request is a 409.
"""

from __future__ import annotations

import hashlib

import msgspec
import redis.asyncio as aioredis

from batch_gateway.errors import Conflict, InvalidRequest
from batch_gateway.events.keys import StreamKeys

MAX_KEY_LENGTH = 256


class _Claim(msgspec.Struct, frozen=True):
    batch_id: str
    fingerprint: str


class IdempotencyKeys:
    def __init__(self, client: aioredis.Redis, keys: StreamKeys, ttl_seconds: int) -> None:
        self._redis = client
        self._keys = keys
        self._ttl_seconds = ttl_seconds

    def _key(self, tenant: str, key: str) -> str:
        scope = hashlib.sha256(msgspec.json.encode([tenant, key])).hexdigest()
        return f"{self._keys.tag}:idempotency:{scope}"

    async def claim(self, tenant: str, key: str, fingerprint: str, batch_id: str) -> str | None:
        """Claim `key` for `batch_id`; returns the batch an earlier identical request created,
        or None when this request is the first to use the key."""
        if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
            raise InvalidRequest(
                "The Idempotency-Key header is not valid.", param="Idempotency-Key"
            )
        claim = msgspec.json.encode(_Claim(batch_id, fingerprint))
        if await self._redis.set(self._key(tenant, key), claim, nx=True, ex=self._ttl_seconds):
            return None
        raw = await self._redis.get(self._key(tenant, key))
        if not isinstance(raw, bytes):  # expired between the two calls: claim it afresh
            return await self.claim(tenant, key, fingerprint, batch_id)
        earlier = msgspec.json.decode(raw, type=_Claim)
        if earlier.fingerprint != fingerprint:
            raise Conflict(
                "This Idempotency-Key was already used with a different request.",
                param="Idempotency-Key",
                code="idempotency_key_reused",
            )
        return earlier.batch_id

    async def release(self, tenant: str, key: str) -> None:
        """Forget a claim whose batch was never created, so a retry can succeed."""
        await self._redis.delete(self._key(tenant, key))


def fingerprint(request: msgspec.Struct) -> str:
    return hashlib.sha256(msgspec.json.encode(request, order="sorted")).hexdigest()
