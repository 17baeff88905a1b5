"""Counting the entries of a stream past a position, at a bounded cost.

Neither the projector's checkpoint nor a consumer group on Redis 6 (no `lag` in
`XINFO GROUPS`) says how many entries lie beyond it, and `XLEN` counts from the start. So
the backlog is counted by reading at most `cap` entries past the position: a backlog larger
than the cap is reported as the cap, which is all an alert needs ("behind, and by a lot").
"""

from __future__ import annotations

import msgspec
import redis.asyncio as aioredis


class Backlog(msgspec.Struct, frozen=True):
    count: int
    """Entries after the position, at most the cap."""
    first_id: str | None
    """The first of them, None when there is none."""


async def backlog_after(client: aioredis.Redis, stream: str, after: str, cap: int) -> Backlog:
    """The entries `stream` holds after the id `after` (exclusive), counted up to `cap`."""
    entries = await client.xrange(stream, min=f"({after}", max="+", count=cap) or []
    first = entries[0][0] if entries else None
    return Backlog(len(entries), first.decode() if isinstance(first, bytes) else first)


async def entries_after(client: aioredis.Redis, stream: str, after: str, cap: int) -> int:
    """How many entries `stream` holds after the id `after` (exclusive), at most `cap`."""
    return (await backlog_after(client, stream, after, cap)).count
