"""Standard Webhooks signatures (https://www.standardwebhooks.com), as OpenAI signs its own.

The secret is "whsec_" followed by the base64 of the key. A message is signed as
`v1,` + base64(HMAC-SHA256(key, f"{webhook-id}.{webhook-timestamp}.{body}")), and the three
values travel in the `webhook-id`, `webhook-timestamp` and `webhook-signature` headers. The
id stays the same on every retry of one event, so a receiver can drop duplicates; the
timestamp is the time of each attempt, so a receiver can refuse replays of old messages.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os

SECRET_PREFIX = "whsec_"
# How far a receiver following the specification lets a timestamp stray from its own clock.
TOLERANCE_SECONDS = 5 * 60


class InvalidWebhookSecret(ValueError):
    """The webhook secret is not "whsec_" followed by a base64 key."""


def new_webhook_secret() -> str:
    """A fresh secret for an operator to configure on both ends."""
    return SECRET_PREFIX + base64.b64encode(os.urandom(32)).decode()


def signing_key(secret: str) -> bytes:
    """The key inside a "whsec_..." secret."""
    if not secret.startswith(SECRET_PREFIX):
        raise InvalidWebhookSecret(f'the webhook secret must start with "{SECRET_PREFIX}"')
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except binascii.Error as error:
        raise InvalidWebhookSecret("the webhook secret is not valid base64") from error
    if not key:
        raise InvalidWebhookSecret("the webhook secret holds an empty key")
    return key


def sign(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(key: bytes, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(key, message_id, timestamp, body),
    }


def verify(key: bytes, headers: dict[str, str], body: bytes, now: float) -> bool:
    """What a receiver checks: a recent timestamp and one matching `v1` signature (the header
    may carry several, space-separated, while a secret is being rotated)."""
    try:
        message_id = headers["webhook-id"]
        timestamp = int(headers["webhook-timestamp"])
        signatures = headers["webhook-signature"].split()
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > TOLERANCE_SECONDS:
        return False
    expected = sign(key, message_id, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in signatures)
