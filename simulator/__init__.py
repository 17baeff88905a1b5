"""An OpenAI-compatible inference server with configurable latency, capacity, faults and
vLLM-style metrics: the default downstream of `batch-gateway up`, and what the processors'
tests and the benchmarks run against (ADR 0010)."""

from batch_gateway.simulator.component import RunningSimulator, run_simulator, running_simulator
from batch_gateway.simulator.settings import ModelBehaviour, SimulatorSettings
from batch_gateway.simulator.stats import BATCH_REQUEST_HEADER, SimulatorStats

__all__ = [
    "BATCH_REQUEST_HEADER",
    "ModelBehaviour",
    "RunningSimulator",
    "SimulatorSettings",
    "SimulatorStats",
    "run_simulator",
    "running_simulator",
]
