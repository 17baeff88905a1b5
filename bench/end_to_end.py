"""A whole batch through the OpenAI SDK, against every component as its own process.

    .venv/bin/python -m bench.end_to_end [--requests 50000] [--concurrency 256] [--batches 1]
                                         [--endpoint chat|embeddings] [--file-mb N]
                                         [--event-loop auto|uvloop|asyncio]
                                         [--embedded | --redis-url URL --postgres-url URL]

Starts simulator (zero latency), API server, projector, processor and gc as `batch-gateway up`
does (bench/live_system.py), on the machine's Redis and PostgreSQL under a namespace of its
own, or with `--embedded` on servers of their own. Then, through the official `openai` SDK:
uploads a generated input file (bench/inputs.py), creates the batch, polls it until it ends,
and reads the output and error files back to check that every custom_id is there exactly once.
`--concurrency` is both the processor's `max_in_flight` and the inference gateway's
`max_concurrency`. `--batches N` deals the requests into N files and runs N batches at once.

Before the batch, the same request bodies go straight to the simulator from a plain aiohttp
client at the same concurrency (bench/direct_client.py): the ratio of the two wall times is
what the gateway costs on top of the inference server.

It prints the wall time from `batches.create` to `completed`, requests/s, each component's
CPU seconds per 1,000 requests and share of a core over that window (from /proc), each
component's peak RSS, and how far the processor's RSS rose above its size before the batch in
each phase (validating, in_progress, finalizing). `--file-mb 200` uploads a ~200 MB file of
~4 KB lines instead (at most 50,000), the case in which the processor must not grow by more
than ~100 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Literal

import msgspec
import redis
from openai import OpenAI
from openai.types import Batch

from bench.direct_client import send_directly
from bench.inputs import CHAT, EMBEDDINGS, chat_lines, embedding_lines
from bench.live_system import LiveSystem, Services, live_system, services
from bench.memory import PhasePeaks, ProcessMemory
from bench.simulator_throughput import cpu_seconds

MB = 1e6
MAX_LINES = 50_000
SMALL_LINE_WORDS = 200  # about 1 KB a line, as bench/validate_input.py
BIG_LINE_WORDS = 1200  # about 4.7 KB a line: 200 MB in about 43,000 lines
BatchEndpoint = Literal["/v1/chat/completions", "/v1/embeddings"]
ENDPOINTS: dict[str, tuple[BatchEndpoint, Callable[[int], Iterator[bytes]]]] = {
    "chat": (CHAT, chat_lines),
    "embeddings": (EMBEDDINGS, embedding_lines),
}
TERMINAL = ("completed", "failed", "expired", "cancelled")
COMPONENTS = ("apiserver", "projector", "processor", "gc", "simulator")
GATEWAY_COMPONENTS = ("apiserver", "projector", "processor", "gc")
API_KEY = "bench"


class _Result(msgspec.Struct):
    custom_id: str


def write_input(path: Path, endpoint: str, requests: int, file_mb: float | None) -> int:
    """Write `requests` lines, or whole lines up to `file_mb` MB; returns the line count."""
    lines = ENDPOINTS[endpoint][1](BIG_LINE_WORDS if file_mb else SMALL_LINE_WORDS)
    written = count = 0
    with path.open("wb") as file:
        for line in lines:
            if (file_mb and written >= file_mb * MB) or (not file_mb and count >= requests):
                break
            file.write(line)
            written += len(line)
            count += 1
    if count > MAX_LINES:
        raise SystemExit(f"{count} lines is more than a batch may have ({MAX_LINES})")
    return count


def redis_pid(redis_url: str) -> int | None:
    """The Redis server's pid, if it runs on this machine (its CPU is then measured too)."""
    client = redis.Redis.from_url(redis_url)
    try:
        pid = int(client.info("server")["process_id"])
    finally:
        client.close()
    return pid if Path(f"/proc/{pid}").exists() else None


class EndToEnd(msgspec.Struct, frozen=True):
    """What one run measured (bench/performance.py collects these)."""

    requests: int
    batches: int
    wall: float
    """Seconds from the first `batches.create` to the poll that saw the last batch end."""
    direct_wall: float
    cpu: dict[str, float]
    """CPU seconds per component over the batches."""
    peaks: dict[str, int]
    processor_growth: int
    """Bytes the processor's RSS rose above its size before the batches, at its peak."""
    exactly_once: bool

    @property
    def throughput_ratio(self) -> float:
        """Gateway throughput as a share of the plain client's, on the same requests."""
        return self.direct_wall / self.wall

    def cpu_per_request(self, component: str) -> float:
        return self.cpu[component] / self.requests


def run_batches(
    client: OpenAI,
    system: LiveSystem,
    file_ids: list[str],
    endpoint: BatchEndpoint,
    poll: float,
    timeout: float,
) -> tuple[list[Batch], dict[str, float], PhasePeaks]:
    """Create the batches at once and poll them to their ends; returns them, the seconds spent
    in each status (as polling saw the first batch) and the processor's memory per status (of
    the first batch: with several, the phases overlap)."""
    phases: dict[str, float] = {}
    with PhasePeaks(system.pid("processor")) as memory:
        started = time.perf_counter()
        batches = [
            client.batches.create(input_file_id=file_id, endpoint=endpoint, completion_window="24h")
            for file_id in file_ids
        ]
        memory.enter(batches[0].status)
        status, since = batches[0].status, started
        while any(batch.status not in TERMINAL for batch in batches):
            if time.perf_counter() - started > timeout:
                raise SystemExit(f"batches still running after {timeout:.0f} s")
            if gone := system.exited():
                raise SystemExit(f"{', '.join(gone)} exited; see {system.logs}")
            time.sleep(poll)
            batches = [
                batch if batch.status in TERMINAL else client.batches.retrieve(batch.id)
                for batch in batches
            ]
            if batches[0].status != status:
                now = time.perf_counter()
                phases[status] = phases.get(status, 0.0) + now - since
                status, since = batches[0].status, now
                if status not in TERMINAL:
                    memory.enter(status)
        phases["total"] = time.perf_counter() - started
    return batches, phases, memory


def check_results(client: OpenAI, batches: list[Batch], expected: int) -> tuple[bool, str]:
    """Whether every custom_id of the input appears exactly once in the output and error
    files (a sanity check: the tests are what assert it)."""
    seen: collections.Counter[str] = collections.Counter()
    lines = {"output": 0, "error": 0}
    decoder = msgspec.json.Decoder(_Result)
    for batch in batches:
        for kind, file_id in (("output", batch.output_file_id), ("error", batch.error_file_id)):
            if file_id is None:
                continue
            with client.files.with_streaming_response.content(file_id) as response:
                for line in response.iter_lines():
                    if line:
                        seen[decoder.decode(line).custom_id] += 1
                        lines[kind] += 1
    wanted = {f"request-{number}" for number in range(expected)}
    missing = len(wanted - seen.keys())
    repeated = sum(1 for count in seen.values() if count > 1)
    unknown = len(seen.keys() - wanted)
    exact = not (missing or repeated or unknown)
    return exact, (
        f"every custom_id appears exactly once: {'yes' if exact else 'NO'} "
        f"({lines['output']:,} output lines, {lines['error']:,} error lines; {missing} missing, "
        f"{repeated} repeated, {unknown} unknown)"
    )


def split_input(path: Path, parts: int) -> list[Path]:
    """The input's lines dealt into `parts` files of (nearly) equal size, in order."""
    lines = path.read_bytes().splitlines(keepends=True)
    size = -(-len(lines) // parts)
    paths = []
    for number in range(parts):
        part = path.with_name(f"input-{number}.jsonl")
        part.write_bytes(b"".join(lines[number * size : (number + 1) * size]))
        paths.append(part)
    return paths


def measure(args: argparse.Namespace, work: Path, backing: Services) -> EndToEnd:
    endpoint = ENDPOINTS[args.endpoint][0]
    input_path = work / "input.jsonl"
    count = write_input(input_path, args.endpoint, args.requests, args.file_mb)
    size = input_path.stat().st_size
    settings = {
        "BATCH_GATEWAY_MAX_IN_FLIGHT": str(args.concurrency),
        "BATCH_GATEWAY_GLOBAL_INFERENCE_GATEWAY_MAX_CONCURRENCY": str(args.concurrency),
    }
    if args.event_loop != "auto":  # unset, code from before ADR 0031 can be measured too
        settings["BATCH_GATEWAY_EVENT_LOOP"] = args.event_loop
    with (
        live_system(work, backing, settings, gc=True) as system,
        OpenAI(
            base_url=f"{system.base_url}/v1", api_key=API_KEY, max_retries=0, timeout=600.0
        ) as client,
    ):
        pids = {name: system.pid(name) for name in COMPONENTS}
        if (pid := redis_pid(backing.redis_url)) is not None:
            pids["redis"] = pid
        started = time.perf_counter()
        file_ids = []
        for path in split_input(input_path, args.batches) if args.batches > 1 else [input_path]:
            with path.open("rb") as file:  # a file object: the SDK streams it
                file_ids.append(client.files.create(file=(path.name, file), purpose="batch").id)
        upload_seconds = time.perf_counter() - started
        print(
            f"input: {count:,} {endpoint} lines, {size / MB:.1f} MB in {args.batches} file(s), "
            f"uploaded in {upload_seconds:.2f} s ({size / MB / upload_seconds:.0f} MB/s)"
        )

        simulator_before = cpu_seconds(pids["simulator"])
        direct = asyncio.run(
            send_directly(
                system.simulator_url,
                input_path,
                args.concurrency,
                {"authorization": f"Bearer {API_KEY}"},
            )
        )
        direct_simulator_cpu = cpu_seconds(pids["simulator"]) - simulator_before

        cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        peaks_before = {name: ProcessMemory(pids[name]).peak() for name in COMPONENTS}
        batches, phases, memory = run_batches(
            client, system, file_ids, endpoint, args.poll_seconds, args.timeout
        )
        cpu = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in pids.items()}
        # The machine's Redis serves other clients too: only its CPU is told.
        measured = [*COMPONENTS, "redis"] if "redis" in pids and backing.embedded else COMPONENTS
        peaks = {name: ProcessMemory(pids[name]).peak() for name in measured}
        growth = max(memory.growth.values())
        peaks["processor"] = max(peaks_before["processor"], memory.baseline + growth)
        wall = phases["total"]
        statuses = collections.Counter(batch.status for batch in batches)
        print(
            f"gateway: {dict(statuses)} in {wall:.2f} s = {count / wall:,.0f} requests/s ("
            + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in phases.items())
            + f"); request_counts {batches[0].request_counts}"
            + (f" (first of {len(batches)})" if len(batches) > 1 else "")
        )
        exact, verdict = check_results(client, batches, count)
        print(f"  {verdict}")
        print(
            f"direct: plain aiohttp client to the simulator, same bodies, concurrency "
            f"{args.concurrency}: {direct.wall:.2f} s = {direct.requests / direct.wall:,.0f} "
            f"requests/s, {direct.failures} not 200; CPU per 1,000 requests: client "
            f"{direct.cpu / direct.requests * 1000:.3f} s, simulator "
            f"{direct_simulator_cpu / direct.requests * 1000:.3f} s"
        )
        print(
            f"  gateway / direct wall time: {wall / direct.wall:.1f}x "
            f"(gateway throughput {direct.wall / wall:.2f}x the plain client's)"
        )
    print_components(count, wall, cpu, peaks, memory)
    return EndToEnd(count, len(batches), wall, direct.wall, cpu, peaks, growth, exact)


def print_components(
    requests: int, wall: float, cpu: dict[str, float], peaks: dict[str, int], memory: PhasePeaks
) -> None:
    """CPU over the batch (create to completed) and peak RSS of each process; the
    processor's growth in each phase of the batch."""
    print(f"{'component':<10} {'CPU s':>7} {'s/1,000 req':>12} {'of a core':>10} {'peak RSS':>9}")
    for name, seconds in cpu.items():
        peak = f"{peaks[name] / MB:.0f} MB" if name in peaks else "-"
        print(
            f"{name:<10} {seconds:>7.2f} {seconds / requests * 1000:>12.3f} "
            f"{seconds / wall:>10.0%} {peak:>9}"
        )
    print(
        f"processor RSS {memory.baseline / MB:.0f} MB before the batch; peak growth "
        + ", ".join(f"+{growth / MB:.1f} MB {phase}" for phase, growth in memory.growth.items())
    )


def run(argv: Sequence[str] | None = None) -> EndToEnd:
    """Parse `argv`, run once, print, and return the figures."""
    parser = argparse.ArgumentParser(prog="python -m bench.end_to_end", description=__doc__)
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument(
        "--batches",
        type=int,
        default=1,
        help="split the requests into this many batches, run at once",
    )
    parser.add_argument("--endpoint", choices=sorted(ENDPOINTS), default="chat")
    parser.add_argument(
        "--file-mb", type=float, help="upload a file of about this size (~4 KB lines) instead"
    )
    parser.add_argument(
        "--embedded", action="store_true", help="start Redis and PostgreSQL of our own"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument(
        "--event-loop",
        choices=["auto", "uvloop", "asyncio"],
        default="auto",
        help="the components' event loop (ADR 0031)",
    )
    parser.add_argument("--poll-seconds", type=float, default=0.2)
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds the batch may take")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, files)")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    load = os.getloadavg()[0]
    print(f"{os.cpu_count()} cores, load average {load:.2f} at start; work folder {work}")
    try:
        with services(work, args.redis_url, args.postgres_url, args.embedded) as backing:
            where = "embedded" if backing.embedded else "this machine's"
            print(f"{where} Redis ({backing.redis_url}) and PostgreSQL")
            return measure(args, work, backing)
    finally:
        print(f"load average {os.getloadavg()[0]:.2f} at the end")
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> None:
    run(argv)


if __name__ == "__main__":
    main()
