"""Tailing the log with blocking reads."""

from __future__ import annotations

import asyncio
from typing import Any

from batch_gateway.events import EventLog
from batch_gateway.events.envelope import ORIGIN
from tests.harness.file_events import deleted, new_file_id, uploaded


async def _until_blocked(task: asyncio.Task[Any]) -> None:
    """Give the tail time to reach Redis and block there."""
    await asyncio.sleep(0.1)
    assert not task.done()


async def test_tail_blocks_until_an_append_arrives(log: EventLog) -> None:
    first = await log.append(new_file_id(), "acme", 0, [uploaded()])
    tail = asyncio.create_task(log.tail(first[-1].stream_id, block_ms=10_000))
    await _until_blocked(tail)

    later = await log.append(new_file_id(), "acme", 0, [uploaded(), deleted()])

    assert (
        await asyncio.wait_for(tail, 5) == later[:1] or await log.read(first[-1].stream_id) == later
    )
    assert await log.tail(first[-1].stream_id, block_ms=10) == later


async def test_tail_from_the_origin_of_an_empty_log_waits_for_the_first_event(
    log: EventLog,
) -> None:
    tail = asyncio.create_task(log.tail(ORIGIN, block_ms=10_000))
    await _until_blocked(tail)
    recorded = await log.append(new_file_id(), "acme", 0, [uploaded()])
    assert await asyncio.wait_for(tail, 5) == recorded


async def test_tail_returns_nothing_when_the_wait_runs_out(log: EventLog) -> None:
    recorded = await log.append(new_file_id(), "acme", 0, [uploaded()])
    assert await log.tail(recorded[-1].stream_id, block_ms=50) == []


async def test_tail_honours_count(log: EventLog) -> None:
    recorded = await log.append(new_file_id(), "acme", 0, [uploaded(), deleted()])
    assert await log.tail(ORIGIN, block_ms=10, count=1) == recorded[:1]
