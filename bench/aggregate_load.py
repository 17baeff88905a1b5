"""What loading a batch aggregate costs as its history grows: 10, 1,000 and 100,000 events.

    .venv/bin/python -m bench.aggregate_load [--sizes 10 1000 100000] [--repeat 20]
                                             [--redis-url URL | --embedded]

For each size it appends a batch's life (created, validated, claimed, then `batch.progress`
events, one chunk each, as a processor commits them) to a fresh key prefix, then times:

- a cold load (`AggregateStore.load`: the snapshot and the events after it), as any command
  that picks up a batch does;
- the same load without snapshots (folding every event from the first), as before ADR 0027;
- a holder's catch-up with one new event (`load_after`), which a processor's `Ownership` does
  four times a second for each job it runs.

Each figure is the median of `--repeat` runs, in milliseconds of wall time against a Redis on
this machine (so it includes the round trip). Flat across sizes is the goal, except for the
load without snapshots, which is shown to see what it would cost.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import redis.asyncio as aioredis

from batch_gateway.clock import system_clock
from batch_gateway.events import EventLog
from batch_gateway.events.aggregate_store import AggregateStore, Loaded
from batch_gateway.events.batch_aggregate import BatchState, batch_store, evolve_batch
from batch_gateway.events.batch_events import (
    BatchCreated,
    BatchInProgress,
    BatchProgress,
    BatchValidated,
    RequestCounts,
    Usage,
)
from batch_gateway.events.keys import StreamKeys
from batch_gateway.events.types import Event
from batch_gateway.stack.redis_server import EmbeddedRedis

APPEND_BATCH = 500


def _progress(n: int) -> BatchProgress:
    counts = RequestCounts(total=10_000_000, completed=n * 10)
    return BatchProgress(request_counts=counts, usage=Usage(total_tokens=n), chunk=f"1-{n}")


async def _grow(log: EventLog, batch_id: str, events: int) -> None:
    """A batch with `events` events in all, appended as a processor would, in batches."""
    head: list[Event] = [
        BatchCreated(
            input_file_id="file-a", endpoint="/v1/chat/completions", completion_window="24h",
            created_at=0, expires_at=2**40,
        ),
        BatchValidated(validated_at=0, total=10_000_000, models=["m"], priority="normal"),
        BatchInProgress(claimed_at=0, processor="bench"),
    ]  # fmt: skip
    store = batch_store(log)
    loaded: Loaded[BatchState] = Loaded(None, 0)
    pending = head + [_progress(n) for n in range(1, events - len(head) + 1)]
    for start in range(0, len(pending), APPEND_BATCH):
        chunk = pending[start : start + APPEND_BATCH]
        loaded, _ = await store.append_loaded(batch_id, "bench", loaded, chunk)


async def _median_ms(repeat: int, run: Callable[[], Awaitable[object]]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        await run()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def _measure(client: aioredis.Redis, size: int, repeat: int) -> tuple[float, ...]:
    log = EventLog(client, StreamKeys(f"bench-load-{uuid.uuid4().hex[:8]}"), system_clock)
    batch_id = "batch_bench"
    try:
        await _grow(log, batch_id, size)
        snapshots = batch_store(log)
        folding = AggregateStore(log, evolve_batch)  # no state type: no snapshots
        cold = await _median_ms(repeat, lambda: snapshots.load(batch_id))
        full = await _median_ms(max(1, repeat // 10), lambda: folding.load(batch_id))
        held = await snapshots.load_loaded(batch_id)
        await log.append(batch_id, "bench", held.version, [_progress(size)])
        catch_up = await _median_ms(repeat, lambda: snapshots.load_after(batch_id, held))
        return cold, full, catch_up
    finally:
        keys = [key async for key in client.scan_iter(match=f"{log.keys.tag}*", count=1000)]
        if keys:
            await client.delete(*keys)


async def _run(url: str, sizes: list[int], repeat: int) -> None:
    client = aioredis.Redis.from_url(url)
    try:
        print(f"{'events':>8}  {'cold load':>10}  {'no snapshots':>13}  {'catch-up':>9}  (ms)")
        for size in sizes:
            cold, full, catch_up = await _measure(client, size, repeat)
            print(f"{size:>8}  {cold:>10.2f}  {full:>13.2f}  {catch_up:>9.2f}", flush=True)
    finally:
        await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 1000, 100_000])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--embedded", action="store_true", help="an embedded Redis")
    args = parser.parse_args()
    if not args.embedded:
        asyncio.run(_run(args.redis_url, args.sizes, args.repeat))
        return
    with tempfile.TemporaryDirectory(prefix="bench-load-") as folder:
        redis = EmbeddedRedis(Path(folder))
        redis.start()
        try:
            asyncio.run(_run(redis.url, args.sizes, args.repeat))
        finally:
            redis.stop()


if __name__ == "__main__":
    main()
