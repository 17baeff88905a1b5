"""The issue's "done means", on a stack of real processes with a 3-second retention: once a
dozen batches have ended, Redis holds almost none of their events, while every API read,
every download and every event replay of them still works, a projection rebuilt from the
archive equals the live one, and a gc restarted after kill -9 starts from its snapshot."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import openai
import pytest
from openai import OpenAI

from batch_gateway.events.keys import StreamKeys
from tests.chaos.invariants import assert_projection_equals_rebuild, rebuild_rows, rows_of
from tests.chaos.stack import ChaosStack, chaos_stack
from tests.execution.results import ids, requests_file, results_of, start_batch
from tests.harness.sse import Frame, read_stream

RETENTION = {"BATCH_GATEWAY_EVENT_RETENTION_SECONDS": "3"}
SIZES = [5, 20, 50] * 4
AUTHORIZATION = {"Authorization": "Bearer retention"}


@pytest.mark.timeout(300)
def test_ended_batches_leave_redis_and_every_read_still_works(tmp_path: Path) -> None:
    with chaos_stack(tmp_path, environment=RETENTION) as stack:
        client = OpenAI(base_url=f"{stack.api_url}/v1", api_key="retention", max_retries=3)
        http = httpx.Client(base_url=stack.api_url, headers=AUTHORIZATION)
        with client, http:
            batches = {start_batch(client, requests_file(size)).id: size for size in SIZES}
            # One batch followed live, from its creation to its end.
            followed = next(iter(batches))
            live: list[list[Frame]] = []
            follower = threading.Thread(
                target=lambda: live.append(read_stream(http, followed).frames)
            )
            follower.start()
            wait_until_completed(client, batches)
            follower.join(timeout=60)

            wait_until_retired(stack, stack.stream_keys(), batches)

            for batch_id, lines in batches.items():
                batch = client.batches.retrieve(batch_id)
                assert batch.status == "completed"
                results_of(client, batch).assert_each_once(ids(lines))
            listed = {b.id for b in client.batches.list(limit=100)}
            assert listed >= set(batches)
            with pytest.raises(openai.ConflictError):
                client.batches.cancel(followed)

            # Replays come from the archive: what was sent live, ids and documents alike.
            assert read_stream(http, followed).frames == live[0]
            middle = live[0][len(live[0]) // 2]
            assert middle.id is not None
            resumed = read_stream(http, followed, headers={"Last-Event-ID": middle.id})
            assert resumed.frames == live[0][len(live[0]) // 2 + 1 :]

            assert_projection_equals_rebuild(stack)
            _assert_the_rebuild_command_equals_the_live_projection(stack)
            _assert_a_killed_gc_restarts_from_its_snapshot(stack)


def wait_until_completed(client: OpenAI, batches: dict[str, int]) -> None:
    deadline = time.monotonic() + 120
    while any(client.batches.retrieve(b).status != "completed" for b in batches):
        assert time.monotonic() < deadline, "the batches did not complete"
        time.sleep(0.5)


def wait_until_retired(stack: ChaosStack, keys: StreamKeys, batches: dict[str, int]) -> None:
    """Until Redis holds none of the batches' streams, and no more than a handful of entries
    of the global stream (what arrives after them)."""
    client = stack.redis_client()
    try:
        deadline = time.monotonic() + 90
        while True:
            left = sum(client.exists(keys.aggregate_stream(b)) for b in batches)
            entries = sum(client.xlen(keys.partition_stream(p)) for p in keys.every_partition)
            if left == 0 and entries <= 5:
                break
            assert time.monotonic() < deadline, (left, entries, stack.logs())
            time.sleep(0.5)
        for batch_id in batches:
            assert int(client.get(keys.aggregate_version(batch_id)) or 0) < 0
    finally:
        client.close()


def _assert_the_rebuild_command_equals_the_live_projection(stack: ChaosStack) -> None:
    fresh = "rebuilt_by_the_command"
    command = ["projector", "--rebuild", "--postgres-schema", fresh]
    subprocess.run(
        [sys.executable, "-m", "batch_gateway", *command],
        env={**os.environ, **stack.environment, "BATCH_GATEWAY_PORT": "0"},
        check=True,
        timeout=120,
    )
    assert rows_of(stack, fresh) == rows_of(stack, stack.settings.postgres_schema)
    assert rebuild_rows(stack) == rows_of(stack, fresh)


def _assert_a_killed_gc_restarts_from_its_snapshot(stack: ChaosStack) -> None:
    stack.kill("gc")
    stack.restart("gc")
    log = stack.components["gc"].log_file.read_text()
    replays = [line for line in log.splitlines() if "gc replayed" in line]
    # The restart folded only what came after the snapshot, not the dozen batches' history.
    assert "from its schedule snapshot" in replays[-1], replays
    assert "folded 0 events after it" in replays[-1], replays
