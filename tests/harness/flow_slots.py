"""Holding a slot of an `AdaptiveLimit` for a block, as the dispatcher holds one per attempt
(it calls `acquire` and `release` by hand, which costs less per request)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from batch_gateway.processors.execution.fair_share import Flow
from batch_gateway.processors.execution.flow_control import AdaptiveLimit


@contextlib.asynccontextmanager
async def holding(limit: AdaptiveLimit, flow: Flow) -> AsyncIterator[None]:
    await limit.acquire(flow)
    try:
        yield
    finally:
        limit.release()
