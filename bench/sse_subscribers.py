"""Hundreds of SSE subscribers on one API server, and what they cost the rest of the API.

    .venv/bin/python -m bench.sse_subscribers [--subscribers 300] [--batches 10] [--seconds 15]
                                              [--readers 4] [--rate 100] [--latency 0.5]
                                              [--embedded | --redis-url URL --postgres-url URL]

Starts simulator, API server, projector and processor as their own processes, as
`batch-gateway up` does (bench/live_system.py), with the simulator answering each request in
`--latency` seconds so that `--batches` batches keep running, each committing a progress event
about once a second, for the whole measurement. Then:

1. baseline: `--readers` concurrent clients GET /v1/batches/{id} (round robin over the running
   batches) at `--rate` requests a second in all (0: as fast as they go) for `--seconds`; the
   latencies' p50, p99 and the rate achieved are printed;
2. a child process opens `--subscribers` SSE streams (`GET /v1/batches/{id}/events`, spread
   evenly over the batches) and counts the events they receive; the time until every stream
   has its first event is printed;
3. the same GETs again for `--seconds`, with every subscriber connected;
4. once more after the subscribers are gone, to see how much of a difference is noise.

For each phase it also prints the API server's CPU share and RSS, and how many connections it
holds to Redis (its sockets in /proc): with the fan-out reader (ADR 0013) a subscriber holds no
Redis connection, so that number does not grow with the subscribers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import multiprocessing
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from openai import OpenAI

from bench.inputs import CHAT, chat_lines
from bench.live_system import LiveSystem, Services, live_system, services
from bench.memory import ProcessMemory
from bench.simulator_throughput import cpu_seconds

# The processor's default concurrency per inference gateway.
GATEWAY_CONCURRENCY = 64
# Work enough to outlast both phases and the subscribers' start by this margin.
MARGIN_SECONDS = 30.0
MB = 1e6


def _subscribe(base_url: str, batch_ids: list[str], count: int, control: Connection) -> None:
    """The child process: `count` streams; reports when all are live, and the events seen."""
    asyncio.run(_subscribers(base_url, batch_ids, count, control))


async def _subscribers(
    base_url: str, batch_ids: list[str], count: int, control: Connection
) -> None:
    started = time.perf_counter()
    live = asyncio.Event()
    connected = 0
    events = 0
    limits = httpx.Limits(max_connections=count + 10)
    timeout = httpx.Timeout(30.0, read=120.0)

    async def follow(batch_id: str) -> None:
        nonlocal connected, events
        async with http.stream("GET", f"/v1/batches/{batch_id}/events") as response:
            first = True
            async for line in response.aiter_lines():
                if line.startswith("id: "):
                    events += 1
                    if first:
                        first = False
                        connected += 1
                        if connected == count:
                            live.set()

    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=timeout) as http:
        tasks = [asyncio.create_task(follow(batch_ids[i % len(batch_ids)])) for i in range(count)]
        await live.wait()
        control.send(("live", time.perf_counter() - started))
        at_start = events
        await asyncio.get_running_loop().run_in_executor(None, control.recv)
        control.send(("events", events - at_start))
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _get_latencies(
    base_url: str, batch_ids: list[str], readers: int, rate: float, seconds: float
) -> list[float]:
    """GETs at `rate` per second in all (0: as fast as `readers` clients go), for `seconds`."""
    latencies: list[float] = []
    start = time.perf_counter()
    deadline = start + seconds
    interval = readers / rate if rate > 0 else 0.0

    async def reader(offset: int) -> None:
        index = offset
        due = start + offset * interval / readers
        while time.perf_counter() < deadline:
            batch_id = batch_ids[index % len(batch_ids)]
            index += 1
            if interval:
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                due += interval
            begun = time.perf_counter()
            response = await http.get(f"/v1/batches/{batch_id}")
            latencies.append(time.perf_counter() - begun)
            response.raise_for_status()

    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        await asyncio.gather(*(reader(i) for i in range(readers)))
    return latencies


def phase(
    name: str, system: LiveSystem, redis_url: str, batch_ids: list[str], args: argparse.Namespace
) -> None:
    pid = system.pid("apiserver")
    cpu_before, wall_before = cpu_seconds(pid), time.perf_counter()
    latencies = asyncio.run(
        _get_latencies(system.base_url, batch_ids, args.readers, args.rate, args.seconds)
    )
    wall = time.perf_counter() - wall_before
    cpu = (cpu_seconds(pid) - cpu_before) / wall
    redis_connections = connections_to(pid, urlsplit(redis_url).port or 6379)
    centiles = statistics.quantiles(latencies, n=100)
    print(
        f"{name:<28} GET /v1/batches/{{id}}: p50 {centiles[49] * 1000:6.1f} ms"
        f"  p99 {centiles[98] * 1000:6.1f} ms  {len(latencies) / wall:6.0f} req/s"
        f"  | apiserver CPU {cpu * 100:3.0f}%  RSS {ProcessMemory(pid).rss() / MB:4.0f} MB"
        f"  | its Redis connections {redis_connections}"
    )
    print(f"{'':<28} {progress(system.base_url, batch_ids)}")


def connections_to(pid: int, port: int) -> int:
    """TCP connections of process `pid` to `port` (Linux: its socket fds in /proc/net/tcp*)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[2].rsplit(":", 1)[1], 16) == port and fields[9] in inodes:
                count += 1
    return count


def progress(base_url: str, batch_ids: list[str]) -> str:
    client = OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0)
    batches = [client.batches.retrieve(batch_id) for batch_id in batch_ids]
    running = sum(batch.status == "in_progress" for batch in batches)
    done = sum(
        b.request_counts.completed + b.request_counts.failed for b in batches if b.request_counts
    )
    return f"{running}/{len(batches)} batches running, {done} requests done"


def create_batches(base_url: str, count: int, requests: int) -> list[str]:
    client = OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0)
    lines = chat_lines(20)
    content = b"".join(next(lines) for _ in range(requests))
    ids = []
    for _ in range(count):
        file_id = client.files.create(file=("input.jsonl", content), purpose="batch").id
        batch = client.batches.create(input_file_id=file_id, endpoint=CHAT, completion_window="24h")
        ids.append(batch.id)
    deadline = time.monotonic() + 60
    while any(client.batches.retrieve(i).status == "validating" for i in ids):
        if time.monotonic() > deadline:
            raise RuntimeError("the batches were not validated within 60 s")
        time.sleep(0.2)
    return ids


def measure(args: argparse.Namespace, work: Path, backing: Services) -> None:
    rate = GATEWAY_CONCURRENCY / args.latency
    requests = math.ceil(rate * (2 * args.seconds + MARGIN_SECONDS) / args.batches)
    environment = {
        # Read by the simulator only (every component gets the same environment).
        "BATCH_GATEWAY_LATENCY_SECONDS": str(args.latency),
        "BATCH_GATEWAY_MAX_CONCURRENT_JOBS": str(args.batches),
        # A small window per job, so that every batch progresses at once (a job's window is
        # otherwise 512 requests, queued ahead of the next job's at the gateway).
        "BATCH_GATEWAY_MAX_IN_FLIGHT": str(math.ceil(2 * GATEWAY_CONCURRENCY / args.batches)),
    }
    with live_system(work, backing, environment) as system:
        batch_ids = create_batches(system.base_url, args.batches, requests)
        print(
            f"{args.batches} batches of {requests} requests running ({args.latency} s each, "
            f"~{rate:.0f} req/s in all); {args.readers} readers, {args.seconds:.0f} s a phase"
        )
        phase("without subscribers", system, backing.redis_url, batch_ids, args)
        parent, child = multiprocessing.Pipe()
        process = multiprocessing.Process(
            target=_subscribe, args=(system.base_url, batch_ids, args.subscribers, child)
        )
        process.start()
        try:
            _, seconds = parent.recv()
            print(f"{args.subscribers} subscribers live (first event each) after {seconds:.2f} s")
            phase(
                f"with {args.subscribers} subscribers", system, backing.redis_url, batch_ids, args
            )
            parent.send("stop")
            _, events = parent.recv()
            per_second = events / args.seconds
            print(f"subscribers received {events} events in that phase ({per_second:.0f}/s)")
        finally:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
        # The same again once they are gone: how much of a difference is the machine's noise.
        phase("without subscribers, again", system, backing.redis_url, batch_ids, args)
        if system.exited():
            print(f"components that exited: {system.exited()}; see {system.logs}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.sse_subscribers", description=__doc__)
    parser.add_argument("--subscribers", type=int, default=300)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each phase")
    parser.add_argument("--readers", type=int, default=4, help="concurrent GET clients")
    parser.add_argument("--rate", type=float, default=100, help="GETs a second (0: flat out)")
    parser.add_argument("--latency", type=float, default=0.5, help="simulator seconds a request")
    parser.add_argument(
        "--embedded", action="store_true", help="start Redis and PostgreSQL of our own"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-sse-"))
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start")
    try:
        with services(work, args.redis_url, args.postgres_url, args.embedded) as backing:
            measure(args, work, backing)
    finally:
        print(f"load average {os.getloadavg()[0]:.2f} at the end")
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
