"""The observability tests run batches as the execution tests do, with their fixtures."""

from tests.execution.conftest import client_of, start_executing, start_simulator

__all__ = ["client_of", "start_executing", "start_simulator"]
