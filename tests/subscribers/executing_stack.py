"""The stacks of the subscriber tests, as the tests and the CLI runs see them."""

from __future__ import annotations

from tests.harness.executing_stacks import ExecutingStack

KEEP_ALIVE_SECONDS = 0.3
# Requests for this model always fail (500, and no retry), so a batch gets an error file.
FAILING_MODEL = "always-500"
API_KEY = "sk-cli-test-key"
CLI_TENANT = "cli-tenant"

__all__ = ["API_KEY", "CLI_TENANT", "FAILING_MODEL", "KEEP_ALIVE_SECONDS", "ExecutingStack"]
