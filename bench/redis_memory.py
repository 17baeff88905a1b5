"""Redis memory against history: round after round of batches, with a short event retention.

    .venv/bin/python -m bench.redis_memory [--rounds 40] [--batches 4] [--lines 100]
                                           [--retention 5] [--latency 0.002]

Starts a Redis server of its own (so `used_memory` is this stack's alone), PostgreSQL (the
machine's, or `--embedded`), and the system as real processes, gc included, with
`BATCH_GATEWAY_EVENT_RETENTION_SECONDS=--retention`. Each round creates `--batches` batches
of `--lines` requests through the official SDK, waits until they complete, downloads their
results and deletes their files (so nothing of a round stays live). Every few rounds
it prints the batches completed so far, Redis's `used_memory`, the entries of the global
stream and of all aggregate streams, and the number of keys; after the last round it waits
for the retention (and a few archive runs) and prints the same once more. With the retention
in force memory stays flat; `--retention 1e9` shows what it does without (it grows with
every batch, as on `main` before ADR 0028).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import redis
from openai import OpenAI

from batch_gateway.stack.redis_server import EmbeddedRedis
from bench.inputs import round_requests
from bench.live_system import Services, live_system, services


def _run_round(client: OpenAI, number: int, args: argparse.Namespace) -> None:
    batch_ids = []
    for batch in range(args.batches):
        content = round_requests(number, batch, args.lines)
        uploaded = client.files.create(file=("memory.jsonl", content), purpose="batch")
        created = client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        batch_ids.append(created.id)
    while any(client.batches.retrieve(b).status != "completed" for b in batch_ids):
        time.sleep(0.05)
    # As a user done with them would: results downloaded, then every file deleted, so that
    # nothing of the round stays live (a live file's one event stays, as it should).
    for batch_id in batch_ids:
        done = client.batches.retrieve(batch_id)
        assert done.output_file_id is not None
        client.files.content(done.output_file_id).read()
        client.files.delete(done.output_file_id)
        client.files.delete(done.input_file_id)


def _sample(client: redis.Redis) -> str:
    memory = int(client.info("memory")["used_memory"])
    global_entries = 0
    aggregate_entries = 0
    for key in client.scan_iter(match="*", count=1000, _type="stream"):
        length = int(client.xlen(key))
        if key.endswith(b":events"):
            global_entries += length
        elif b":aggregate:" in key:
            aggregate_entries += length
    return (
        f"used_memory {memory / 1e6:7.2f} MB  global entries {global_entries:6d}  "
        f"aggregate entries {aggregate_entries:6d}  keys {client.dbsize():6d}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--lines", type=int, default=100)
    parser.add_argument("--retention", type=float, default=5.0)
    parser.add_argument("--latency", type=float, default=0.002, help="simulator seconds/request")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--embedded", action="store_true", help="embedded PostgreSQL too")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="redis-memory-") as folder:
        work = Path(folder)
        own_redis = EmbeddedRedis(work / "own-redis")
        own_redis.start()
        try:
            with services(work, own_redis.url, args.postgres_url, args.embedded) as backing:
                own = Services(own_redis.url, backing.postgres_url, embedded=backing.embedded)
                _measure(work, own, args)
        finally:
            own_redis.stop()
    return 0


def _measure(work: Path, backing: Services, args: argparse.Namespace) -> None:
    environment = {
        "BATCH_GATEWAY_LATENCY_SECONDS": str(args.latency),
        "BATCH_GATEWAY_EVENT_RETENTION_SECONDS": str(args.retention),
        "BATCH_GATEWAY_SWEEP_INTERVAL_SECONDS": "1",
    }
    with live_system(work, backing, environment, gc=True) as system:
        client = OpenAI(base_url=f"{system.base_url}/v1", api_key="memory", max_retries=5)
        probe = redis.Redis.from_url(backing.redis_url)
        print(f"retention {args.retention:g} s, {args.batches} batches of {args.lines} a round")
        every = max(1, args.rounds // 8)
        for number in range(1, args.rounds + 1):
            _run_round(client, number, args)
            if number % every == 0:
                print(f"batches {number * args.batches:5d}  {_sample(probe)}", flush=True)
        time.sleep(min(args.retention, 60) + 10)
        print(f"quiet {args.retention:g}+10 s later  {_sample(probe)}")
        probe.close()


if __name__ == "__main__":
    sys.exit(main())
