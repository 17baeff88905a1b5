"""The whole system on a Redis Cluster of three masters, with the log in eight partitions
(ADR 0029): batches complete with every request answered once, nothing stays pending in any
partition's consumer groups, two projectors split the partitions between them and their
projection equals a rebuild, the keys spread over every master, and the archive and the trim
work partition by partition."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import redis
from openai import OpenAI

from tests.chaos.invariants import assert_nothing_pending, assert_projection_equals_rebuild
from tests.chaos.stack import ChaosStack, chaos_stack
from tests.execution.results import ids, requests_file, results_of, start_batch
from tests.harness.redis_cluster import embedded_cluster
from tests.stack.test_event_retention import wait_until_completed, wait_until_retired

MASTERS = 3
ENVIRONMENT = {
    "BATCH_GATEWAY_EVENT_PARTITIONS": "8",
    "BATCH_GATEWAY_EVENT_RETENTION_SECONDS": "3",
}


@pytest.mark.timeout(300)
def test_the_system_runs_on_three_masters_with_a_partitioned_log(tmp_path: Path) -> None:
    with (
        embedded_cluster(tmp_path / "cluster", masters=MASTERS) as url,
        chaos_stack(tmp_path, "projector-2", environment=ENVIRONMENT, redis_url=url) as stack,
    ):
        client = OpenAI(base_url=f"{stack.api_url}/v1", api_key="cluster", max_retries=3)
        with client:
            batches = {start_batch(client, requests_file(n)).id: n for n in [20, 50, 100] * 2}
            wait_until_completed(client, batches)
            for batch_id, lines in batches.items():
                results_of(client, client.batches.retrieve(batch_id)).assert_each_once(ids(lines))
            keys = stack.stream_keys()
            assert {keys.partition_of(b) for b in batches} != {0}
            assert_nothing_pending(stack)
            assert_projection_equals_rebuild(stack)
            _assert_keys_on_every_master(url)
            _assert_the_projectors_split_the_partitions(stack)
            wait_until_retired(stack, keys, batches)
            assert client.batches.retrieve(next(iter(batches))).status == "completed"


def _assert_keys_on_every_master(url: str) -> None:
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    with redis.Redis(host="127.0.0.1", port=port) as node:
        masters = {int(entry[2][1]) for entry in node.cluster("SLOTS")}
    assert len(masters) == MASTERS
    for master_port in masters:
        with redis.Redis(host="127.0.0.1", port=master_port) as master:
            assert master.dbsize() > 0, f"no key on the master at {master_port}"


def _assert_the_projectors_split_the_partitions(stack: ChaosStack) -> None:
    """Both projectors hold partitions, none the same, all of them together (the first to
    start takes them all, then gives up what is beyond its share when the second appears)."""
    deadline = time.monotonic() + 30  # a share is given up a round (2 s) after a peer joins
    while True:
        held = [_held(stack.log_of(name)) for name in ("projector", "projector-2")]
        split = all(held) and not held[0] & held[1] and held[0] | held[1] == set(range(8))
        if split:
            return
        assert time.monotonic() < deadline, held
        time.sleep(0.5)


def _held(log: str) -> set[int]:
    held: set[int] = set()
    for line in log.splitlines():
        if following := re.search(r"projector following \{[^}:]+(?::p(\d+))?\}:events", line):
            held.add(int(following.group(1) or 0))
        elif released := re.search(r"let go of partition (\d+)", line):
            held.discard(int(released.group(1)))
    return held
