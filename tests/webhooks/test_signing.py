"""Standard Webhooks signing, and the webhook settings."""

from __future__ import annotations

import time

import pytest

from batch_gateway.processors.settings import ProcessorSettings
from batch_gateway.processors.webhooks.signing import (
    InvalidWebhookSecret,
    new_webhook_secret,
    signed_headers,
    signing_key,
    verify,
)
from batch_gateway.settings import load_settings

# The example of the Standard Webhooks specification's reference libraries.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_signatures_match_the_specifications_example() -> None:
    key = signing_key(SPEC_SECRET)
    headers = signed_headers(key, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY)
    assert headers == {
        "webhook-id": SPEC_ID,
        "webhook-timestamp": str(SPEC_TIMESTAMP),
        "webhook-signature": SPEC_SIGNATURE,
    }
    assert verify(key, headers, SPEC_BODY, now=SPEC_TIMESTAMP + 10)
    assert not verify(key, headers, SPEC_BODY + b" ", now=SPEC_TIMESTAMP)
    assert not verify(key, headers, SPEC_BODY, now=SPEC_TIMESTAMP + 3600)


def test_a_fresh_secret_signs_and_verifies() -> None:
    key = signing_key(new_webhook_secret())
    now = int(time.time())
    assert verify(key, signed_headers(key, "evt_1", now, b"{}"), b"{}", now=now)


@pytest.mark.parametrize(
    "secret", ["", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_not base64!", "whsec_"]
)
def test_malformed_secrets_are_refused(secret: str) -> None:
    with pytest.raises(InvalidWebhookSecret):
        signing_key(secret)


def test_webhook_settings_come_from_the_environment() -> None:
    settings = load_settings(
        ProcessorSettings,
        {
            "BATCH_GATEWAY_WEBHOOK_URLS": '["https://example.com/hook"]',
            "BATCH_GATEWAY_WEBHOOK_SECRET": SPEC_SECRET,
            "BATCH_GATEWAY_WEBHOOK_MAX_ATTEMPTS": "3",
        },
    )
    assert settings.webhook_urls == ["https://example.com/hook"]
    assert settings.webhook_max_attempts == 3
    assert "webhooks" in settings.roles
    assert ProcessorSettings().webhook_urls == []
