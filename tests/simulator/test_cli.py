"""`batch-gateway simulator` as an operator runs it: flags and environment, a JSON log line
saying where it serves, answers, and a clean exit on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from batch_gateway.settings import load_settings
from batch_gateway.simulator import SimulatorSettings

START_TIMEOUT_SECONDS = 30.0


def test_serves_until_sigterm() -> None:
    command = [sys.executable, "-m", "batch_gateway", "simulator", "--port", "0",
               "--latency", "0.01", "--served-model", "llama",
               "--max-output-tokens", "3"]  # fmt: skip
    environment = {**os.environ, "BATCH_GATEWAY_MODELS": '{"llama": {"rate_429": 0.0}}'}
    process = subprocess.Popen(command, stderr=subprocess.PIPE, env=environment)
    try:
        url = _serving_url(process)
        with httpx.Client(base_url=url, timeout=10) as client:
            assert [model["id"] for model in client.get("/v1/models").json()["data"]] == ["llama"]
            body = {"model": "llama", "messages": [{"role": "user", "content": "Hi"}]}
            answer = client.post("/v1/chat/completions", json=body)
            assert answer.status_code == 200
            assert answer.json()["usage"]["completion_tokens"] == 3
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        assert process.stderr is not None
        process.stderr.close()


def _serving_url(process: subprocess.Popen[bytes]) -> str:
    assert process.stderr is not None
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        record = json.loads(line)
        assert record["component"] == "simulator"
        if record["message"].startswith("simulator serving on "):
            return str(record["message"].rsplit(" ", 1)[1])
    pytest.fail(f"the simulator did not start (exit code {process.poll()})")


def test_invalid_settings_exit_2() -> None:
    command = [sys.executable, "-m", "batch_gateway", "simulator",
               "--rate-429", "0.7", "--rate-500", "0.7"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, timeout=60, check=False)
    assert result.returncode == 2
    assert b"add up to" in result.stderr


def test_settings_come_from_the_environment() -> None:
    settings = load_settings(
        SimulatorSettings,
        {
            "BATCH_GATEWAY_PORT": "9000",
            "BATCH_GATEWAY_RATE_503": "0.25",
            "BATCH_GATEWAY_SEED": "3",
            "BATCH_GATEWAY_SERVED_MODELS": '["a", "b"]',
            "BATCH_GATEWAY_MODELS": '{"a": {"latency_seconds": 1.5, "capacity": 4}}',
        },
        {"latency_seconds": 0.5},
    )
    assert (settings.port, settings.rate_503, settings.seed) == (9000, 0.25, 3)
    assert settings.latency_seconds == 0.5
    assert settings.served_models == ["a", "b"]
    assert settings.models["a"].latency_seconds == 1.5
    assert settings.models["a"].capacity == 4
