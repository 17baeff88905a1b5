"""Interactive latency with a large batch running on the same server, flow control off and on.

    python -m bench.coexistence [--seconds 40] [--embedded]
    python -m bench.coexistence --inference-url http://pool:80 --metrics-url http://pool:80/metrics

An interactive load (a steady `--idle-rate` with bursts of `--burst-rate` for `--burst-seconds`
every `--burst-every` seconds) goes straight to the server, as users' requests would, in four
phases of `--seconds` each, every phase a whole system started afresh (bench/live_system.py):
1. capacity: the batch alone, flow control off: the server's throughput for batch requests;
2. alone: the interactive load alone: its baseline latency;
3. unmanaged: both, flow control off (a fixed concurrency of `--max-concurrency`);
4. managed: both, admission on (`max_running` = the server's slots less `--headroom`, nothing
   waiting), as docs/coexistence.md configures it for llm-d.
It prints the interactive p50/p95/p99 of each phase, the batch's throughput, and the share of
the idle capacity (capacity less the interactive rate) the batch used. By default the server
is the simulator as a shared server (`--slots` slots; latency growing with load, ADR 0010);
any OpenAI-compatible URL with a metrics URL (vLLM's /metrics, or a Prometheus server with
`--prometheus-url`) measures an operator's own pool instead.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import aiohttp
import msgspec
from openai import OpenAI

from batch_gateway.stack.redis_server import free_port
from bench.live_system import live_system, services

CHAT = "/v1/chat/completions"
OUTPUT_TOKENS = 20


class Phase(msgspec.Struct, frozen=True):
    name: str
    latencies: list[float]
    batch_rate: float  # batch requests answered per second during the phase

    def percentile(self, share: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _body(model: str, words: int) -> dict[str, object]:
    content = " ".join(["word"] * words)
    messages = [{"role": "user", "content": content}]
    return {"model": model, "messages": messages, "max_tokens": OUTPUT_TOKENS}


def _arrivals(args: argparse.Namespace) -> list[float]:
    """Seconds from the start at which interactive requests arrive (Poisson, seeded)."""
    rng = random.Random(args.seed)
    times, now = [], 0.0
    while now < args.seconds:
        in_burst = (now % args.burst_every) < args.burst_seconds
        now += rng.expovariate(args.burst_rate if in_burst else args.idle_rate)
        times.append(now)
    return [moment for moment in times if moment < args.seconds]


async def _interactive(url: str, model: str, arrivals: list[float]) -> list[float]:
    latencies: list[float] = []
    body = msgspec.json.encode(_body(model, 30))
    headers = {"content-type": "application/json"}

    async def one(session: aiohttp.ClientSession, at: float, start: float) -> None:
        await asyncio.sleep(max(0.0, start + at - time.monotonic()))
        sent = time.monotonic()
        async with session.post(url + CHAT, data=body, headers=headers) as response:
            await response.read()
            if response.status == 200:
                latencies.append(time.monotonic() - sent)

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        start = time.monotonic()
        await asyncio.gather(*(one(session, at, start) for at in arrivals))
    return latencies


def _batch_input(path: Path, model: str, lines: int) -> Path:
    with path.open("wb") as out:
        for number in range(lines):
            line = {"custom_id": f"r{number}", "method": "POST", "url": CHAT}
            line["body"] = _body(model, 30)  # type: ignore[assignment]
            out.write(msgspec.json.encode(line) + b"\n")
    return path


def _answered(client: OpenAI, batch_id: str) -> int:
    counts = client.batches.retrieve(batch_id).request_counts
    return 0 if counts is None else counts.completed + counts.failed


def _phase(
    args: argparse.Namespace, work: Path, name: str, *, batch: bool, interactive: bool
) -> Phase:
    port = free_port()
    metrics_url = args.metrics_url or f"http://127.0.0.1:{port}/metrics"
    settings = {
        "BATCH_GATEWAY_GLOBAL_INFERENCE_GATEWAY_MAX_CONCURRENCY": str(args.max_concurrency),
        # The simulator as a shared server (its settings; the other components ignore them).
        "BATCH_GATEWAY_CAPACITY": str(args.slots),
        "BATCH_GATEWAY_LATENCY_SECONDS": "0.1",
        "BATCH_GATEWAY_LATENCY_PER_OUTPUT_TOKEN_SECONDS": "0.01",
        "BATCH_GATEWAY_LOAD_SLOWDOWN": str(args.load_slowdown),
        "BATCH_GATEWAY_JITTER": "0.1",
    }
    if name == "managed":
        gateway = "BATCH_GATEWAY_GLOBAL_INFERENCE_GATEWAY_"
        settings |= {
            gateway + "METRICS_URL": "" if args.prometheus_url else metrics_url,
            gateway + "PROMETHEUS_URL": args.prometheus_url,
            gateway + "MAX_RUNNING": str(args.slots - args.headroom),
            gateway + "SATURATION_WAITING_THRESHOLD": "0",
        }
    folder = work / name
    with (
        services(folder, args.redis_url, args.postgres_url, args.embedded) as backing,
        live_system(
            folder, backing, settings, inference_url=args.inference_url, simulator_port=port
        ) as system,
    ):
        client = OpenAI(base_url=system.base_url + "/v1", api_key="bench", max_retries=5)
        batch_id = _start_batch(client, work / f"{name}.jsonl", args) if batch else None
        before = _answered(client, batch_id) if batch_id else 0
        started = time.monotonic()
        if interactive:
            arrivals = _arrivals(args)
            latencies = asyncio.run(_interactive(system.simulator_url, args.model, arrivals))
        else:
            time.sleep(args.seconds)
            latencies = []
        elapsed = time.monotonic() - started
        rate = (_answered(client, batch_id) - before) / elapsed if batch_id else 0.0
        if batch_id:
            client.batches.cancel(batch_id)
        client.close()
    return Phase(name, latencies, rate)


def _start_batch(client: OpenAI, path: Path, args: argparse.Namespace) -> str:
    """A batch big enough to outlast the phase, running at its pace."""
    _batch_input(path, args.model, args.batch_lines)
    with path.open("rb") as handle:
        uploaded = client.files.create(file=handle, purpose="batch")
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    while _answered(client, batch.id) < args.warmup_requests:
        time.sleep(0.2)
    return batch.id


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--idle-rate", type=float, default=1.0)
    parser.add_argument("--burst-rate", type=float, default=15.0)
    parser.add_argument("--burst-seconds", type=float, default=3.0)
    parser.add_argument("--burst-every", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--slots", type=int, default=32, help="the simulated server's slots")
    parser.add_argument("--load-slowdown", type=float, default=0.2)
    parser.add_argument("--headroom", type=int, default=6, help="slots left to interactive")
    parser.add_argument("--max-concurrency", type=int, default=64)
    parser.add_argument("--batch-lines", type=int, default=8000)
    parser.add_argument("--warmup-requests", type=int, default=200)
    parser.add_argument("--model", default="sim-model")
    parser.add_argument("--inference-url", default=None, help="a pool of your own")
    parser.add_argument("--metrics-url", default=None, help="its vLLM /metrics")
    parser.add_argument("--prometheus-url", default="", help="or a Prometheus seeing it")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--embedded", action="store_true", help="start Redis and PostgreSQL")
    args = parser.parse_args(argv)
    if args.inference_url and not (args.metrics_url or args.prometheus_url):
        parser.error("--inference-url needs --metrics-url or --prometheus-url")
    with tempfile.TemporaryDirectory(prefix="bench-coexistence-") as folder:
        work = Path(folder)
        phases = [
            _phase(args, work, "capacity", batch=True, interactive=False),
            _phase(args, work, "alone", batch=False, interactive=True),
            _phase(args, work, "unmanaged", batch=True, interactive=True),
            _phase(args, work, "managed", batch=True, interactive=True),
        ]
    _report(args, phases)


def _report(args: argparse.Namespace, phases: list[Phase]) -> None:
    by_name = {phase.name: phase for phase in phases}
    capacity = by_name["capacity"].batch_rate
    interactive_rate = len(_arrivals(args)) / args.seconds
    idle = max(1e-9, capacity - interactive_rate)
    baseline = by_name["alone"].percentile(0.95)
    print(f"server capacity for batch requests: {capacity:.1f} req/s; interactive load "
          f"{interactive_rate:.1f} req/s on average; idle capacity {idle:.1f} req/s")  # fmt: skip
    print(f"{'phase':<10} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'p95 x':>6} "
          f"{'batch req/s':>12} {'idle used':>10}")  # fmt: skip
    for phase in phases[1:]:
        p95 = phase.percentile(0.95)
        print(
            f"{phase.name:<10} {phase.percentile(0.5) * 1000:>8.0f} {p95 * 1000:>8.0f} "
            f"{phase.percentile(0.99) * 1000:>8.0f} {p95 / baseline:>6.2f} "
            f"{phase.batch_rate:>12.1f} {phase.batch_rate / idle:>10.0%}"
        )
    managed = by_name["managed"]
    goal = managed.percentile(0.95) <= 1.25 * baseline and managed.batch_rate >= 0.7 * idle
    verdict = "met" if goal else "not met"
    print(f"goal (managed p95 within 1.25x of alone, batch at least 70% of idle): {verdict}")


if __name__ == "__main__":
    main()
