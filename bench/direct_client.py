"""The requests of a batch input file sent straight to an inference server, without the
gateway: one aiohttp session, a fixed number of requests in flight. What the gateway's
throughput is compared with."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import msgspec


class _Line(msgspec.Struct):
    url: str
    body: msgspec.Raw


class DirectRun(msgspec.Struct, frozen=True):
    requests: int
    failures: int
    """Answers other than 200."""
    wall: float
    cpu: float
    """CPU seconds of this process (the client) while sending."""


def _requests(input_path: Path) -> Iterator[tuple[str, bytes]]:
    """(endpoint, body) of each line, read from disk as needed: a 200 MB file stays there."""
    decoder = msgspec.json.Decoder(_Line)
    with input_path.open("rb") as file:
        for raw in file:
            if raw.strip():
                line = decoder.decode(raw)
                yield line.url, bytes(line.body)


async def send_directly(
    base_url: str, input_path: Path, concurrency: int, headers: dict[str, str]
) -> DirectRun:
    """Send every request of the file to `base_url`, `concurrency` at a time; each worker
    takes the next line when its answer has been read in full."""
    requests = _requests(input_path)
    sent = failures = 0
    headers = {"content-type": "application/json", **headers}

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal sent, failures
        for endpoint, body in requests:
            async with session.post(base_url + endpoint, data=body, headers=headers) as response:
                await response.read()
                sent += 1
                failures += response.status != 200

    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started, cpu_started = time.perf_counter(), time.process_time()
        async with asyncio.TaskGroup() as group:
            for _ in range(concurrency):
                group.create_task(worker(session))
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return DirectRun(requests=sent, failures=failures, wall=wall, cpu=cpu)
