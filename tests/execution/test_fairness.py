"""Fair share on a live stack: a tenant's small batch, submitted while another tenant's big
batches keep the server busy, starts at once and finishes long before them."""

from __future__ import annotations

import time

from openai import OpenAI

from batch_gateway.processors.settings import GatewaySettings
from tests.execution.conftest import ClientOf, StartExecuting, StartSimulator
from tests.execution.results import TERMINAL, requests_file, start_batch, wait_for
from tests.harness.batch_helpers import wait_until_status


def test_a_small_batch_of_another_tenant_is_not_stuck_behind_big_ones(
    start_executing: StartExecuting, start_simulator: StartSimulator, client_of: ClientOf
) -> None:
    # 8 slots of 50 ms: the server answers about 160 requests a second.
    sim = start_simulator(latency_seconds=0.05)
    stack = start_executing(
        global_inference_gateway=GatewaySettings(url=sim.url, max_concurrency=8),
        slice_size=100,
        max_concurrent_jobs=8,
    )
    big, small = client_of(stack), client_of(stack)
    bigs = [start_batch(big, requests_file(600)) for _ in range(4)]
    wait_for(lambda: _left(big, bigs[0].id) < 550, 20, "the big batches run")
    started = time.monotonic()
    tiny = start_batch(small, requests_file(100))
    done = wait_until_status(small, tiny.id, TERMINAL, 30)
    took = time.monotonic() - started
    remaining = sum(_left(big, batch.id) for batch in bigs)

    assert done.status == "completed"
    # Alone it would take 100 / 160 s; with half the server, about 1.3 s (plus validation).
    assert took < 8, f"the small batch took {took:.1f} s"
    assert remaining > 600, "it finished while most of the big batches' work was left"


def _left(client: OpenAI, batch_id: str) -> int:
    """Requests of the batch without a result yet (all of them before it is validated)."""
    counts = client.batches.retrieve(batch_id).request_counts
    if counts is None or counts.total == 0:
        return 600
    return counts.total - counts.completed - counts.failed
