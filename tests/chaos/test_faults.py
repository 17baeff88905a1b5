"""Faults done to a stack of real processes while batches of several sizes run: components
killed with SIGKILL at seeded moments and restarted, Redis killed and restarted from its AOF,
PostgreSQL stopped and started, two processors and two projectors at once, SIGTERM mid-work.
After each, every invariant of `invariants.py` holds.

The seed fixes each fault's order and moments; `BATCH_GATEWAY_CHAOS_SEEDS` (a number, default
1) runs each scenario with that many seeds, for the long run the README describes.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import openai
import pytest
from openai import OpenAI

from tests.chaos.invariants import assert_invariants
from tests.chaos.stack import ChaosStack, chaos_stack
from tests.execution.results import TERMINAL, requests_file, start_batch

SIZES = (20, 200, 1000)
FINISH_TIMEOUT_SECONDS = 120.0
SEEDS = range(1, int(os.environ.get("BATCH_GATEWAY_CHAOS_SEEDS", "1")) + 1)

Fault = Callable[[ChaosStack, random.Random], None]


def _pause(chance: random.Random, low: float = 0.2, high: float = 1.5) -> None:
    time.sleep(chance.uniform(low, high))


def kill_each_component(stack: ChaosStack, chance: random.Random) -> None:
    names = ["apiserver", "projector", "processor", "gc"]
    chance.shuffle(names)
    for name in names:
        _pause(chance)
        stack.kill(name)
        _pause(chance, 0.1, 1.0)
        stack.restart(name)


def kill_redis(stack: ChaosStack, chance: random.Random) -> None:
    _pause(chance)
    stack.redis.kill()
    _pause(chance, 0.5, 2.0)
    stack.redis.start()  # from its append-only file


def stop_postgres(stack: ChaosStack, chance: random.Random) -> None:
    _pause(chance)
    stack.postgres.stop()
    _pause(chance, 0.5, 2.0)
    stack.postgres.start()


def kill_one_of_two_processors(stack: ChaosStack, chance: random.Random) -> None:
    _pause(chance)
    stack.kill(chance.choice(["processor", "processor-2"]))
    stack.kill(chance.choice(["projector", "projector-2"]))


def storage_outage(stack: ChaosStack, chance: random.Random) -> None:
    assert stack.seaweed is not None
    _pause(chance)
    stack.seaweed.kill()
    _pause(chance, 1.0, 4.0)
    stack.seaweed.start()  # with every object it held


def terminate_processor(stack: ChaosStack, chance: random.Random) -> None:
    _pause(chance)
    stack.terminate("processor")
    stack.restart("processor")


SCENARIOS: dict[str, tuple[Fault, tuple[str, ...]]] = {
    "kill -9 each component": (kill_each_component, ()),
    "redis killed, restarted from its AOF": (kill_redis, ()),
    "postgresql stopped and started": (stop_postgres, ()),
    "two processors and two projectors, one of each killed": (
        kill_one_of_two_processors,
        ("processor-2", "projector-2"),
    ),
    "processor stopped with SIGTERM mid-work": (terminate_processor, ()),
    "object storage (S3) unavailable for a while": (storage_outage, ()),
}
# Scenarios whose files are in a real S3 server (SeaweedFS) rather than a directory.
ON_S3 = {"object storage (S3) unavailable for a while"}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_every_invariant_holds_after_the_fault(tmp_path: Path, scenario: str, seed: int) -> None:
    fault, extra = SCENARIOS[scenario]
    chance = random.Random(f"{scenario}/{seed}")
    with chaos_stack(tmp_path, *extra, s3=scenario in ON_S3) as stack:
        client = OpenAI(base_url=f"{stack.api_url}/v1", api_key="chaos", max_retries=8, timeout=30)
        with client:
            batches = {start_batch(client, requests_file(size)).id: size for size in SIZES}
            fault(stack, chance)
            try:
                _wait_until_ended(client, batches)
                assert_invariants(stack, client, batches)
            except AssertionError as error:
                raise AssertionError(f"{error}\n{stack.logs()}") from error


def _wait_until_ended(client: OpenAI, batches: dict[str, int]) -> None:
    deadline = time.monotonic() + FINISH_TIMEOUT_SECONDS
    pending = set(batches)
    while pending:
        assert time.monotonic() < deadline, f"still running after the fault: {pending}"
        for batch_id in list(pending):
            try:
                if client.batches.retrieve(batch_id).status in TERMINAL:
                    pending.discard(batch_id)
            except (openai.APIConnectionError, openai.InternalServerError, httpx.HTTPError):
                pass  # a backing service is still coming back
        time.sleep(0.2)
