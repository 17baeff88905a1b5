"""Counting the entries of a stream past a position, at a bounded cost.

Neither the projector's checkpoint nor a consumer group on Redis 6 (no `lag` in
`XINFO GROUPS`) says how many entries lie beyond it, and `XLEN` counts from the start. So
the backlog is counted by reading at most `cap` entries past the position: a backlog larger
than the cap is reported as the cap, which is all an alert needs ("behind, and by a lot").
"""

from __future__ import annotations

import redis.asyncio as aioredis


async def entries_after(client: aioredis.Redis, stream: str, after: str, cap: int) -> int:
    """How many entries `stream` holds after the id `after` (exclusive), at most `cap`."""
    entries = await client.xrange(stream, min=f"({after}", max="+", count=cap)
    return len(entries or [])
