"""The official OpenAI SDK pointed at a live stack, as strict as it gets."""

from __future__ import annotations

from typing import Any

from openai import OpenAI

from tests.harness.live_stack import LiveStack


def sdk_client(stack: LiveStack, api_key: str = "x", **options: Any) -> OpenAI:
    """Strict response validation, and no retries so that every status shows as it is."""
    return OpenAI(
        base_url=f"{stack.base_url}/v1",
        api_key=api_key,
        max_retries=0,
        _strict_response_validation=True,
        **options,
    )
