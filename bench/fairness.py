"""Fair share between tenants, and one batch scaled over processors.

    python -m bench.fairness [--embedded]

1. Tenants: two, then ten tenants, each submitting one batch at once, of very different sizes,
   to one system in front of the simulator (`--slots` slots of `--latency` seconds). Each
   batch's completion time is printed against its fair-share ideal: the server's throughput
   (measured on a batch alone) shared equally between the tenants with work left (processor
   sharing), which is what weighted fair queueing approaches.
2. Scaling: one batch on 1, 2 and 4 processors, each processor allowed `--per-processor`
   requests in flight (its gateway's `max_concurrency`), against a server with room for all:
   throughput against the number of processors.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import msgspec
from openai import OpenAI

from bench.live_system import live_system, services

CHAT = "/v1/chat/completions"
TWO_TENANTS = (3000, 200)
TEN_TENANTS = (2000, 1000, 50, 800, 100, 400, 1500, 200, 300, 600)


def _input(path: Path, lines: int) -> Path:
    with path.open("wb") as out:
        for number in range(lines):
            body = {"model": "sim-model", "messages": [{"role": "user", "content": "hi"}]}
            line = {"custom_id": f"r{number}", "method": "POST", "url": CHAT, "body": body}
            out.write(msgspec.json.encode(line) + b"\n")
    return path


def ideal_completions(sizes: Sequence[int], throughput: float) -> list[float]:
    """When each tenant's batch ends if the server's throughput is shared equally between the
    tenants with work left (a fluid model of fair queueing)."""
    left = [float(size) for size in sizes]
    done = [0.0] * len(sizes)
    now = 0.0
    while any(amount > 0 for amount in left):
        active = [i for i, amount in enumerate(left) if amount > 0]
        share = throughput / len(active)
        step = min(left[i] for i in active) / share
        now += step
        for i in active:
            left[i] -= share * step
            if left[i] <= 1e-9:
                left[i], done[i] = 0.0, now
    return done


def _run_batches(
    args: argparse.Namespace, work: Path, name: str, sizes: Sequence[int], processors: int = 1
) -> list[float]:
    """Seconds from submission until each batch (one tenant each) completed."""
    settings = {
        "BATCH_GATEWAY_CAPACITY": str(args.slots),
        "BATCH_GATEWAY_LATENCY_SECONDS": str(args.latency),
        "BATCH_GATEWAY_GLOBAL_INFERENCE_GATEWAY_MAX_CONCURRENCY": str(args.per_processor),
        "BATCH_GATEWAY_SLICE_SIZE": str(args.slice_size),
    }
    folder = work / name
    with (
        services(folder, args.redis_url, args.postgres_url, args.embedded) as backing,
        live_system(folder, backing, settings, processors=processors) as system,
    ):
        clients = [
            OpenAI(
                base_url=system.base_url + "/v1",
                api_key="bench",
                default_headers={"X-MaaS-Username": f"tenant-{number}"},
                max_retries=5,
            )
            for number in range(len(sizes))
        ]
        uploads = []
        for number, (client, size) in enumerate(zip(clients, sizes, strict=True)):
            with _input(folder / f"in-{number}.jsonl", size).open("rb") as handle:
                uploads.append(client.files.create(file=handle, purpose="batch").id)
        started = time.monotonic()
        batches = [
            client.batches.create(
                input_file_id=upload, endpoint="/v1/chat/completions", completion_window="24h"
            ).id
            for client, upload in zip(clients, uploads, strict=True)
        ]
        ended: dict[int, float] = {}
        while len(ended) < len(batches):
            for number, (client, batch_id) in enumerate(zip(clients, batches, strict=True)):
                if number not in ended and client.batches.retrieve(batch_id).status in (
                    "completed", "failed", "expired", "cancelled"
                ):  # fmt: skip
                    ended[number] = time.monotonic() - started
            time.sleep(0.1)
        for client in clients:
            client.close()
    return [ended[number] for number in range(len(batches))]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slots", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--per-processor", type=int, default=32)
    parser.add_argument("--slice-size", type=int, default=250)
    parser.add_argument("--scale-lines", type=int, default=6000)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--embedded", action="store_true", help="start Redis and PostgreSQL")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-fairness-") as folder:
        work = Path(folder)
        alone = _run_batches(args, work, "alone", [2000])[0]
        throughput = 2000 / alone
        print(f"server throughput, one batch alone: {throughput:.0f} req/s")
        for name, sizes in (("two tenants", TWO_TENANTS), ("ten tenants", TEN_TENANTS)):
            measured = _run_batches(args, work, name.replace(" ", "-"), sizes)
            ideal = ideal_completions(sizes, throughput)
            print(f"\n{name}: batch size, completed after (s), fair-share ideal (s), ratio")
            for size, took, best in sorted(zip(sizes, measured, ideal, strict=True)):
                print(f"  {size:>6} {took:>8.1f} {best:>8.1f} {took / best:>6.2f}")
        print(
            f"\none batch of {args.scale_lines} on N processors"
            f" ({args.per_processor} in flight each)"
        )
        slots = args.slots
        args.slots = 4 * args.per_processor  # room for every processor's requests
        base = None
        for processors in (1, 2, 4):
            took = _run_batches(args, work, f"scale-{processors}", [args.scale_lines], processors)[
                0
            ]
            rate = args.scale_lines / took
            base = base or rate
            print(f"  {processors} processor(s): {rate:>7.0f} req/s, x{rate / base:.2f}")
        args.slots = slots


if __name__ == "__main__":
    main()
