"""How many requests a second the simulator answers on one core.

    .venv/bin/python -m bench.simulator_throughput [--requests 20000] [--concurrency 64]
                                                   [--latency 0] [--core 0] [--max-tokens N]

Starts `batch-gateway simulator` in a child process pinned to one core (`taskset -c CORE` when
available; this process then keeps to the other cores), and fires `--requests` chat completions
at it from an aiohttp client in this process, `--concurrency` at a time, over a pooled session.
The bodies are the realistic chat requests of bench/inputs.py (prompts of 10 to 200 words,
`max_tokens` of 64, 256 or 1024, hence answers of that many words). It prints requests/s, the
client-side p50/p99 latency, and the simulator's CPU seconds per 1,000 requests (from /proc):
1,000 / that is what the simulator could serve if the client were infinitely fast, since on a
small machine the Python client is often the bottleneck rather than the server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import aiohttp
import msgspec

from batch_gateway.stack.redis_server import free_port
from bench.inputs import chat_lines

START_TIMEOUT_SECONDS = 30.0
WARM_UP_REQUESTS = 1000
DISTINCT_BODIES = 1000


class Line(msgspec.Struct):
    body: msgspec.Raw


def chat_bodies(count: int, max_tokens: int | None) -> list[bytes]:
    bodies: list[bytes] = []
    for line in itertools.islice(chat_lines(200), count):
        body = msgspec.json.decode(msgspec.json.decode(line, type=Line).body)
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        bodies.append(msgspec.json.encode(body))
    return bodies


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def simulator_process(port: int, core: int, latency: float) -> Iterator[subprocess.Popen[bytes]]:
    command = [sys.executable, "-m", "batch_gateway", "simulator", "--port", str(port)]
    command += ["--latency", str(latency), "--capacity", "100000"]
    pinned = shutil.which("taskset") is not None and core in os.sched_getaffinity(0)
    if pinned:
        # taskset execs the command: the child's pid is the simulator's.
        command = ["taskset", "-c", str(core), *command]
        others = os.sched_getaffinity(0) - {core}
        if others:
            os.sched_setaffinity(0, others)
    print(f"simulator: {'pinned to core ' + str(core) if pinned else 'not pinned'}")
    process = subprocess.Popen(command, env={**os.environ, "BATCH_GATEWAY_LOG_LEVEL": "WARNING"})
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


async def wait_until_up(session: aiohttp.ClientSession, url: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while True:
        try:
            async with session.get(url + "/health") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientConnectionError:
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.1)


async def fire(
    session: aiohttp.ClientSession, url: str, bodies: list[bytes], total: int, concurrency: int
) -> list[float]:
    """Send `total` requests, `concurrency` at a time; returns each one's latency."""
    latencies: list[float] = []
    numbers = iter(range(total))
    headers = {"Content-Type": "application/json"}

    async def worker() -> None:
        for number in numbers:
            started = time.perf_counter()
            body = bodies[number % len(bodies)]
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"simulator answered {response.status}")
            latencies.append(time.perf_counter() - started)

    async with asyncio.TaskGroup() as group:
        for _ in range(concurrency):
            group.create_task(worker())
    return latencies


async def measure(args: argparse.Namespace) -> None:
    bodies = chat_bodies(DISTINCT_BODIES, args.max_tokens)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with simulator_process(port, args.core, args.latency) as process:
        connector = aiohttp.TCPConnector(limit=args.concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:
            await wait_until_up(session, base)
            url = base + "/v1/chat/completions"
            await fire(session, url, bodies, WARM_UP_REQUESTS, args.concurrency)
            cpu_before = cpu_seconds(process.pid)
            started = time.perf_counter()
            latencies = await fire(session, url, bodies, args.requests, args.concurrency)
            wall = time.perf_counter() - started
            server_cpu = cpu_seconds(process.pid) - cpu_before
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(f"{args.requests} chat requests, concurrency {args.concurrency}, latency {args.latency}s")
    print(f"  {args.requests / wall:,.0f} requests/s ({wall:.2f} s)")
    print(f"  latency p50 {statistics.median(latencies) * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms")
    print(
        f"  simulator CPU {server_cpu:.2f} s = {server_cpu / args.requests * 1000:.3f} s per 1,000"
        f" requests (at most {args.requests / max(server_cpu, 1e-9):,.0f} requests/s per core)"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.0, help="simulated seconds a request")
    parser.add_argument("--core", type=int, default=0, help="the core the simulator runs on")
    parser.add_argument(
        "--max-tokens", type=int, default=None, help="replace every body's max_tokens"
    )
    asyncio.run(measure(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
