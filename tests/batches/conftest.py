"""Fixtures of the Batches API tests: a second tenant on the module's stack, and a look behind
the stack's API (its event log, secret store and a validator)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from openai import OpenAI

from tests.harness.live_stack import LiveStack
from tests.harness.sdk import sdk_client
from tests.harness.stack_internals import StackInternals, stack_internals


@pytest.fixture
def other_tenant() -> str:
    return f"other-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def other_client(module_stack: LiveStack, other_tenant: str) -> Iterator[OpenAI]:
    headers = {module_stack.settings.tenant_header: other_tenant}
    with sdk_client(module_stack, default_headers=headers) as openai_client:
        yield openai_client


@pytest.fixture
async def internals(module_stack: LiveStack) -> AsyncIterator[StackInternals]:
    async with stack_internals(module_stack.settings) as inside:
        yield inside
