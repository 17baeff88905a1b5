"""Soak: round after round of concurrent batches through one stack, every batch must finish.

    .venv/bin/python -m bench.soak [--rounds 1000] [--batches 5] [--lines 200]
                                   [--round-timeout 60] [--latency 0.002] [--embedded]

Starts the system as real processes (`bench/live_system.py`: simulator, API server, projector,
processor), then each round uploads `--batches` input files of `--lines` chat requests and
creates their batches at once through the official SDK, and waits until every one of them has
ended. A batch still running `--round-timeout` seconds after its round began is a liveness
failure (issue 10: about one round in twelve left a batch `in_progress` for ever): the soak
prints its id, status and counts and exits 1. Each ended batch must be `completed` with one
result per line. At the end it prints the rounds, batches and requests run, and the round
times (p50, p90, p99, max).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import statistics
import sys
import tempfile
import time
from pathlib import Path

from openai import OpenAI
from openai.types import Batch

from bench.inputs import round_requests
from bench.live_system import live_system, services

TERMINAL = {"completed", "failed", "expired", "cancelled"}


def _start(client: OpenAI, content: bytes) -> str:
    uploaded = client.files.create(file=("soak.jsonl", content), purpose="batch")
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    return batch.id


def _run_round(
    client: OpenAI, pool: concurrent.futures.Executor, number: int, args: argparse.Namespace
) -> tuple[float, list[Batch]]:
    started = time.monotonic()
    contents = [round_requests(number, batch, args.lines) for batch in range(args.batches)]
    batch_ids = list(pool.map(lambda content: _start(client, content), contents))
    deadline = started + args.round_timeout
    while True:
        batches = [client.batches.retrieve(batch_id) for batch_id in batch_ids]
        if all(batch.status in TERMINAL for batch in batches) or time.monotonic() > deadline:
            return time.monotonic() - started, batches
        time.sleep(0.05)


def _problems(batches: list[Batch], lines: int) -> list[str]:
    found = []
    for batch in batches:
        counts = batch.request_counts
        done = counts.completed if counts else None
        if batch.status != "completed" or done != lines:
            found.append(f"{batch.id}: {batch.status}, request_counts {counts}")
    return found


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=1000)
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--lines", type=int, default=200)
    parser.add_argument("--round-timeout", type=float, default=60.0)
    parser.add_argument("--latency", type=float, default=0.002, help="simulator seconds/request")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--embedded", action="store_true", help="embedded Redis and PostgreSQL")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="soak-") as folder:
        work = Path(folder)
        backing_services = services(work, args.redis_url, args.postgres_url, args.embedded)
        simulator = {"BATCH_GATEWAY_LATENCY_SECONDS": str(args.latency)}
        with backing_services as backing, live_system(work, backing, simulator) as system:
            client = OpenAI(base_url=f"{system.base_url}/v1", api_key="soak", max_retries=5)
            times: list[float] = []
            with concurrent.futures.ThreadPoolExecutor(args.batches) as pool:
                for number in range(1, args.rounds + 1):
                    seconds, batches = _run_round(client, pool, number, args)
                    times.append(seconds)
                    problems = _problems(batches, args.lines)
                    if problems or system.exited():
                        print(f"round {number}: {len(problems)} batches did not finish right")
                        for problem in problems:
                            print(f"  {problem}")
                        print(f"  exited components: {system.exited()}; logs in {system.logs}")
                        _report(times, args)
                        return 1
                    if number % 50 == 0:
                        print(f"round {number}: {seconds:.2f} s", flush=True)
            _report(times, args)
    return 0


def _report(times: list[float], args: argparse.Namespace) -> None:
    rounds = len(times)
    print(
        f"rounds {rounds}, batches {rounds * args.batches}, "
        f"requests {rounds * args.batches * args.lines}"
    )
    print(
        f"round seconds: p50 {statistics.median(times):.2f}, p90 {_percentile(times, 0.9):.2f},"
        f" p99 {_percentile(times, 0.99):.2f}, max {max(times):.2f}"
    )


if __name__ == "__main__":
    sys.exit(main())
