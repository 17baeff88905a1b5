"""The secret store: pass-through headers captured when a batch is created.

They are what processors forward downstream (an `Authorization` header, typically), so they
must be usable later, yet they never enter the event log, the projections or the logs. They
are sealed with AES-GCM under the operator's `secrets_key`, bound to the batch and tenant as
associated data (a sealed value copied to another batch or tenant does not open), kept with
a TTL, and deleted when the batch ends.
"""

from __future__ import annotations

import base64
import binascii
import os

import msgspec
import redis.asyncio as aioredis
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from batch_gateway.events.keys import StreamKeys

_NONCE_BYTES = 12


class InvalidSecretsKey(ValueError):
    pass


def load_secrets_key(text: str) -> bytes:
    if not text:
        raise InvalidSecretsKey("not set")
    try:
        key = base64.urlsafe_b64decode(text.encode())
    except (binascii.Error, ValueError) as error:
        raise InvalidSecretsKey("not URL-safe base64") from error
    if len(key) != 32:
        raise InvalidSecretsKey("must decode to 32 bytes")
    return key


def new_secrets_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


class SecretStore:
    def __init__(self, client: aioredis.Redis, keys: StreamKeys, key: bytes) -> None:
        self._redis = client
        self._keys = keys
        self._aead = AESGCM(key)

    def _key(self, batch_id: str) -> str:
        return f"{self._keys.tag}:secrets:{batch_id}"

    async def put(
        self, batch_id: str, tenant: str, headers: dict[str, str], ttl_seconds: int
    ) -> None:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, msgspec.json.encode(headers), _bound(batch_id, tenant))
        await self._redis.set(self._key(batch_id), nonce + sealed, ex=ttl_seconds)

    async def get(self, batch_id: str, tenant: str) -> dict[str, str]:
        """The headers captured for the batch; empty when none were (or they were deleted)."""
        raw = await self._redis.get(self._key(batch_id))
        if not isinstance(raw, bytes):
            return {}
        try:
            plain = self._aead.decrypt(
                raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _bound(batch_id, tenant)
            )
        except InvalidTag:
            return {}
        return msgspec.json.decode(plain, type=dict[str, str])

    async def delete(self, batch_id: str) -> None:
        await self._redis.delete(self._key(batch_id))


def _bound(batch_id: str, tenant: str) -> bytes:
    return msgspec.json.encode([batch_id, tenant])
