"""A stack that executes batches against a simulator of its own: the subscriber, console and
Node SDK tests each start one, slow enough (by their simulator settings) for progress to show."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batch_gateway.processors.settings import GatewaySettings
from batch_gateway.simulator import SimulatorSettings
from tests.harness.live_stack import LiveStack, isolated_stack
from tests.harness.simulator_thread import SimulatorThread

# Requests one processor sends at once: fixed, so that a test can tell how long a batch runs.
CONCURRENCY = 4


@dataclass(frozen=True)
class ExecutingStack:
    stack: LiveStack
    simulator: SimulatorThread

    @property
    def api_base_url(self) -> str:
        return f"{self.stack.base_url}/v1"


@contextlib.contextmanager
def executing_stack(
    redis_url: str,
    postgres_url: str,
    files_root: Path,
    simulator_settings: SimulatorSettings,
    *,
    commit_interval_seconds: float = 0.2,
    **changes: Any,
) -> Iterator[ExecutingStack]:
    """Validates and executes, CONCURRENCY requests at a time, no retries (a 500 fails its
    request at once), and commits results every `commit_interval_seconds`."""
    processor: dict[str, Any] = {
        "roles": ["validate", "execute"],
        "commit_interval_seconds": commit_interval_seconds,
        "max_attempts": 1,
        "cancel_grace_seconds": 0.2,
    }
    with SimulatorThread(simulator_settings) as simulator:
        processor["global_inference_gateway"] = GatewaySettings(
            url=simulator.url, max_concurrency=CONCURRENCY, min_concurrency=CONCURRENCY
        )
        with isolated_stack(
            redis_url, postgres_url, files_root, processor_overrides=processor, **changes
        ) as stack:
            yield ExecutingStack(stack, simulator)
