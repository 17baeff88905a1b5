"""Downstream faults injected by the simulator: what is retried and how often (the simulator
counts every attempt), and the lines what cannot be saved ends in."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Protocol

import pytest
from openai.types import Batch

from batch_gateway.processors.settings import GatewaySettings
from batch_gateway.simulator import SimulatorStats
from tests.execution.conftest import ClientOf, StartExecuting, StartSimulator
from tests.execution.results import (
    Results,
    ids,
    request,
    requests_file,
    results_of,
    run_batch,
)
from tests.harness.batch_helpers import jsonl

SEED = 7
COUNT = 40
# Batch ids are random, so which requests meet a fault differs from run to run: at a rate of
# 0.25, some of 40 requests are retried (but for 1e-5), and none fails 12 times (but for 3e-6).
RATE = 0.25
ATTEMPTS = 12


@dataclass(frozen=True)
class Run:
    batch: Batch
    results: Results
    stats: SimulatorStats

    def attempts(self) -> dict[str, int]:
        """How many times each custom_id reached the simulator."""
        prefix = f"{self.batch.id}/"
        return {
            key.removeprefix(prefix): count
            for key, count in self.stats.by_batch_request.items()
            if key.startswith(prefix)
        }


class RunAgainst(Protocol):
    """Run a batch (COUNT chat requests, or `content`) against a simulator with `simulator`
    settings, through a gateway with `gateway` settings and a processor with `processor` ones."""

    def __call__(
        self,
        simulator: dict[str, Any],
        gateway: dict[str, Any] | None = ...,
        content: bytes | None = ...,
        **processor: Any,
    ) -> Run: ...


@pytest.fixture
def run(
    start_simulator: StartSimulator, start_executing: StartExecuting, client_of: ClientOf
) -> RunAgainst:
    def execute(
        simulator: dict[str, Any],
        gateway: dict[str, Any] | None = None,
        content: bytes | None = None,
        **processor: Any,
    ) -> Run:
        sim = start_simulator(seed=SEED, **simulator)
        route = GatewaySettings(url=sim.url, **(gateway or {}))
        client = client_of(start_executing(global_inference_gateway=route, **processor))
        batch = run_batch(client, requests_file(COUNT) if content is None else content)
        assert batch.status == "completed", batch
        results = results_of(client, batch)
        results.assert_counts_match(batch)
        return Run(batch, results, sim.stats())

    return execute


@pytest.mark.parametrize("fault", ["429", "503"])
def test_throttling_and_overload_are_retried_until_they_succeed(
    run: RunAgainst, fault: str
) -> None:
    outcome = run({f"rate_{fault}": RATE, "retry_after_seconds": 1}, max_attempts=ATTEMPTS)

    outcome.results.assert_each_once(ids(COUNT))
    assert outcome.results.errors == []
    attempts = outcome.attempts()
    retried = [custom_id for custom_id, count in attempts.items() if count > 1]
    assert retried, attempts
    assert max(attempts.values()) <= ATTEMPTS
    assert outcome.stats.by_status[fault] == sum(attempts.values()) - COUNT
    assert outcome.stats.by_status["200"] == COUNT


def test_a_permanent_server_error_ends_in_error_lines_after_max_attempts(run: RunAgainst) -> None:
    outcome = run({"rate_500": 1.0}, max_attempts=3)

    results = outcome.results
    results.assert_each_once(ids(COUNT))
    assert results.output == []
    assert outcome.batch.output_file_id is None
    for line in results.errors:
        assert line["error"] is None
        assert line["response"]["status_code"] == 500
        assert line["response"]["body"]["error"]["type"] == "server_error"
    assert outcome.attempts() == dict.fromkeys(ids(COUNT), 3)


def test_a_bad_request_is_answered_once_and_never_retried(run: RunAgainst) -> None:
    broken = request("bad")
    broken["body"]["messages"] = "not a list of messages"
    content = jsonl([request("good"), broken])

    outcome = run({"rate_503": 0.0}, content=content)

    results = outcome.results
    results.assert_each_once({"good", "bad"})
    assert [line["custom_id"] for line in results.output] == ["good"]
    [error] = results.errors
    assert error["response"]["status_code"] == 400
    assert error["response"]["body"]["error"]["type"] == "invalid_request_error"
    assert outcome.attempts() == {"good": 1, "bad": 1}


def test_requests_that_outlive_their_timeout_end_as_request_timeout(run: RunAgainst) -> None:
    outcome = run(
        {"rate_timeout": 0.3, "timeout_seconds": 30}, gateway={"request_timeout_seconds": 0.3}
    )

    results = outcome.results
    results.assert_each_once(ids(COUNT))
    timed_out = {line["custom_id"] for line in results.errors}
    assert timed_out, "the seed makes some requests time out"
    assert results.error_codes == Counter({"request_timeout": len(timed_out)})
    for line in results.errors:
        assert line["response"] is None
    attempts = outcome.attempts()
    # A timeout is final: no request was sent twice. (On a loaded machine a request can time
    # out before it reaches the simulator at all, so not every id need appear.)
    assert set(attempts.values()) <= {1}
    assert set(ids(COUNT)) - timed_out <= set(attempts)
    assert outcome.stats.by_status["200"] >= COUNT - len(timed_out)  # some answered too late


def test_dropped_connections_are_retried(run: RunAgainst) -> None:
    outcome = run({"rate_disconnect": RATE}, max_attempts=ATTEMPTS)

    results = outcome.results
    results.assert_each_once(ids(COUNT))
    assert results.errors == []
    attempts = outcome.attempts()
    assert any(count > 1 for count in attempts.values()), attempts
    assert outcome.stats.by_status["disconnect"] == sum(attempts.values()) - COUNT
