"""Stopping `batch-gateway up` with Ctrl-C in the middle of a batch loses nothing and re-sends
nothing: the terminal's SIGINT reaches `up` alone, which stops the API and the processors first,
each within its grace period, and Redis and PostgreSQL last."""

from __future__ import annotations

import time
from pathlib import Path

from batch_gateway.simulator import SimulatorSettings
from batch_gateway.stack.redis_server import free_port
from tests.harness.batch_helpers import chat_file, create_batch, wait_until_status
from tests.harness.simulator_thread import SimulatorThread
from tests.harness.up_process import UpProcess

REQUESTS = 2000
# Slow enough that Ctrl-C lands mid-batch: about 200 requests a second.
SIMULATOR = SimulatorSettings(port=0, latency_seconds=0.25, capacity=50, served_models=["m1"])


def test_ctrl_c_mid_batch_then_up_again_sends_no_request_twice(tmp_path: Path) -> None:
    """Every request reaches the inference server exactly once across the stop and restart,
    and the batch still completes with one line per request."""
    data_dir = tmp_path / "stack"
    port = free_port()
    # A short job grace: the batch outlasts it, so the stop happens with requests in flight.
    environment = {"BATCH_GATEWAY_SHUTDOWN_GRACE_SECONDS": "3"}
    with SimulatorThread(SIMULATOR) as simulator:
        arguments = ("--inference-url", simulator.url)
        first = UpProcess(data_dir, port, *arguments, environment=environment)
        try:
            batch = create_batch(first.client(), chat_file(REQUESTS))
            _wait_for_requests(simulator, REQUESTS * 3 // 10)
        finally:
            assert first.ctrl_c() == 0
        received = sum(simulator.stats().by_batch_request.values())
        assert received < REQUESTS, "the batch finished before the stop; slow the simulator"

        second = UpProcess(data_dir, port, *arguments, environment=environment)
        try:
            done = wait_until_status(second.client(), batch.id, {"completed", "failed"}, 120)
        finally:
            assert second.interrupt() == 0
        counts = simulator.stats().by_batch_request

    assert done.status == "completed"
    assert done.request_counts is not None
    assert done.request_counts.completed == REQUESTS
    assert len(counts) == REQUESTS
    sent_twice = {request: times for request, times in counts.items() if times > 1}
    assert sent_twice == {}


def _wait_for_requests(simulator: SimulatorThread, count: int) -> None:
    deadline = time.monotonic() + 60
    while sum(simulator.stats().by_batch_request.values()) < count:
        assert time.monotonic() < deadline, "the batch never got going"
        time.sleep(0.05)
