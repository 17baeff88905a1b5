#!/usr/bin/env python3
"""Follow batch completions straight from Batch Gateway's event log, with a consumer group of
your own: a direct subscriber on Redis Streams (docs/events.md).

    python examples/follow_completions.py --redis-url redis://127.0.0.1:6379/0 \\
        [--prefix batch-gateway] [--group completions] [--consumer NAME] \\
        [--webhook URL] [--from-start] [--partitions N]

It reads the global stream `{<prefix>}:events` (the prefix is the gateway's
BATCH_GATEWAY_KEY_PREFIX; a log in N partitions, BATCH_GATEWAY_EVENT_PARTITIONS, also has
`{<prefix>:p1}:events` ... `{<prefix>:p<N-1>}:events`, and it reads them all) and, for
every batch that ends (`batch.completed`, `batch.failed`,
`batch.expired`, `batch.cancelled`), prints one line with the batch id, its status and its
request counts, or with `--webhook URL` POSTs them there as JSON.

How it follows the log, as any direct subscriber should:
- `XGROUP CREATE <stream> <group> $ MKSTREAM` once (an existing group, `BUSYGROUP`, is fine):
  a new group starts with the events appended from now on, or with `--from-start` at the first.
- At start it re-reads the entries delivered to this consumer but never acknowledged (it
  crashed, or a webhook failed), then waits for new ones with `XREADGROUP ... BLOCK`.
- It acknowledges an entry (`XACK`) only once it printed it or the webhook accepted it:
  delivery is at least once, so a receiver should deduplicate by `event_id`.
- It ignores event types and fields it does not know: the schema only grows.

It needs nothing but redis-py (`pip install redis`); it does not import batch_gateway.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import sys
import time
import urllib.request
from collections.abc import Sequence
from typing import Any

import redis

ENDINGS = {"batch.completed", "batch.failed", "batch.expired", "batch.cancelled"}
BLOCK_MS = 5000
RETRY_SECONDS = 2.0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--prefix", default="batch-gateway", help="BATCH_GATEWAY_KEY_PREFIX")
    parser.add_argument("--partitions", type=int, default=1, help="BATCH_GATEWAY_EVENT_PARTITIONS")
    parser.add_argument("--group", default="completions", help="this program's consumer group")
    parser.add_argument("--consumer", default=f"{socket.gethostname()}-{os.getpid()}")
    parser.add_argument("--webhook", metavar="URL", help="POST each ending there as JSON")
    parser.add_argument("--from-start", action="store_true", help="a new group reads it all")
    return parser.parse_args(argv)


def ending_of(fields: dict[bytes, bytes]) -> dict[str, Any] | None:
    """What to report about an entry, or None when it is not the end of a batch."""
    if fields.get(b"type", b"").decode() not in ENDINGS:
        return None
    event = json.loads(fields[b"event"])
    data = event.get("data") or {}
    return {
        "event_id": event["id"],
        "type": event["type"],
        "batch_id": event["aggregate_id"],
        "status": event["type"].removeprefix("batch."),
        "request_counts": data.get("request_counts"),
        "output_file_id": data.get("output_file_id"),
        "error_file_id": data.get("error_file_id"),
        "occurred_at": event["occurred_at"],
    }


def report(ending: dict[str, Any], webhook: str | None) -> None:
    """Print the ending, or POST it; raises when the webhook does not accept it."""
    if webhook is None:
        counts = ending["request_counts"] or {}
        print(
            f"{ending['type']} {ending['batch_id']} status={ending['status']}"
            f" total={counts.get('total', '-')} completed={counts.get('completed', '-')}"
            f" failed={counts.get('failed', '-')}"
            f" output_file_id={ending['output_file_id'] or '-'}"
            f" error_file_id={ending['error_file_id'] or '-'}",
            flush=True,
        )
        return
    request = urllib.request.Request(
        webhook,
        data=json.dumps(ending).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


def create_group(client: redis.Redis, stream: str, group: str, from_start: bool) -> None:
    try:
        client.xgroup_create(stream, group, id="0" if from_start else "$", mkstream=True)
    except redis.exceptions.ResponseError as error:
        if not str(error).startswith("BUSYGROUP"):
            raise


def streams_of(prefix: str, partitions: int) -> list[str]:
    """The partitions of the global stream: `{prefix}:events`, then `{prefix:p1}:events`..."""
    return ["{" + prefix + (f":p{k}" if k else "") + "}:events" for k in range(partitions)]


def follow(args: argparse.Namespace) -> None:
    client = redis.Redis.from_url(args.redis_url)
    streams = streams_of(args.prefix, args.partitions)
    for stream in streams:
        create_group(client, stream, args.group, args.from_start)
    following = ", ".join(streams)
    print(f"following {following} as {args.group}/{args.consumer}", file=sys.stderr, flush=True)
    # "0" re-reads this consumer's unacknowledged entries; ">" asks for new ones. (On a Redis
    # Cluster, read each partition with a client of its own: one read waits on one slot.)
    backlog = True
    while True:
        reply: Any = client.xreadgroup(
            args.group,
            args.consumer,
            dict.fromkeys(streams, "0" if backlog else ">"),
            count=100,
            block=None if backlog else BLOCK_MS,
        )
        batches: list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]] = reply or []
        if backlog and not any(entries for _, entries in batches):
            backlog = False
            continue
        for replied_stream, entries in batches:
            for entry_id, fields in entries:
                ending = ending_of(fields)
                try:
                    if ending is not None:
                        report(ending, args.webhook)
                except OSError as error:
                    print(f"webhook failed ({error}); retrying", file=sys.stderr, flush=True)
                    backlog = True
                    time.sleep(RETRY_SECONDS)
                    break
                client.xack(replied_stream, args.group, entry_id)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with contextlib.suppress(KeyboardInterrupt):
        follow(args)


if __name__ == "__main__":
    main()
