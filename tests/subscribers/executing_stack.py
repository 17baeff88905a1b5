"""The stacks of the subscriber tests, as the tests and the CLI runs see them."""

from __future__ import annotations

from dataclasses import dataclass

from tests.harness.live_stack import LiveStack
from tests.harness.simulator_thread import SimulatorThread

KEEP_ALIVE_SECONDS = 0.3
# Requests for this model always fail (500, and no retry), so a batch gets an error file.
FAILING_MODEL = "always-500"
API_KEY = "sk-cli-test-key"
CLI_TENANT = "cli-tenant"


@dataclass(frozen=True)
class ExecutingStack:
    stack: LiveStack
    simulator: SimulatorThread

    @property
    def api_base_url(self) -> str:
        return f"{self.stack.base_url}/v1"
