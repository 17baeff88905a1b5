"""`batch-gateway up` from a user's point of view: one command, a working API, data that
survives a restart, and a stack another process can join through `stack.env`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from batch_gateway.stack.redis_server import free_port
from tests.harness.up_process import START_TIMEOUT_SECONDS, UpProcess

REQUESTS = (
    b'{"custom_id": "1", "method": "POST", "url": "/v1/chat/completions",'
    b' "body": {"model": "sim-model", "messages": [{"role": "user", "content": "hi"}]}}\n'
)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "stack"


def test_up_runs_the_system_and_keeps_data_across_restarts(data_dir: Path) -> None:
    port = free_port()
    first = UpProcess(data_dir, port)
    try:
        assert f"http://127.0.0.1:{port}/v1" in first.banner
        assert "embedded" in first.banner
        assert "(the simulator)" in first.banner
        client = first.client()
        uploaded = client.files.create(file=("requests.jsonl", REQUESTS), purpose="batch")
        assert [f.id for f in client.files.list()] == [uploaded.id]
        # The whole path: validated, executed against the simulator, finalized into files.
        batch = client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        deadline = time.monotonic() + 60
        while batch.status not in ("completed", "failed") and time.monotonic() < deadline:
            time.sleep(0.1)
            batch = client.batches.retrieve(batch.id)
        assert batch.status == "completed"
        assert batch.output_file_id is not None
        output = client.files.content(batch.output_file_id).read().splitlines()
        assert [json.loads(line)["custom_id"] for line in output] == ["1"]
        console = f"http://127.0.0.1:{port}/console/"
        assert console in first.banner
        assert batch.id in httpx.get(console, timeout=10).text
    finally:
        assert first.interrupt() == 0

    env_lines = (data_dir / "stack.env").read_text().splitlines()
    env = dict(line.split("=", 1) for line in env_lines)
    assert env["BATCH_GATEWAY_REDIS_URL"].startswith("redis://127.0.0.1:")
    assert env["BATCH_GATEWAY_POSTGRES_URL"].startswith("postgresql://")
    assert env["BATCH_GATEWAY_STORAGE_FS_ROOT"] == str(data_dir.resolve() / "files")

    second = UpProcess(data_dir, port)
    try:
        client = second.client()
        assert client.files.retrieve(uploaded.id) == uploaded
        assert client.files.content(uploaded.id).read() == REQUESTS
    finally:
        assert second.interrupt() == 0


def _second_up(data_dir: Path, port: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "batch_gateway", "up", "--data-dir", str(data_dir),
         "--port", str(port)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )  # fmt: skip


def test_a_second_up_on_the_same_data_or_port_is_refused_before_it_starts(
    data_dir: Path, tmp_path: Path
) -> None:
    port = free_port()
    first = UpProcess(data_dir, port)
    try:
        redis_port = (data_dir / "redis" / "port").read_text()
        same_data = _second_up(data_dir, free_port())
        assert same_data.returncode == 1
        assert f"{data_dir.resolve()} is in use by `batch-gateway up` (pid " in same_data.stderr
        assert "Batch Gateway is up" not in same_data.stdout
        # Nothing of the second one started: the embedded Redis is still the first one's.
        assert (data_dir / "redis" / "port").read_text() == redis_port

        same_port = _second_up(tmp_path / "other", port)
        assert same_port.returncode == 1
        assert f"cannot serve the API on 127.0.0.1:{port}" in same_port.stderr
        assert "Pass --port" in same_port.stderr
        assert not (tmp_path / "other" / "redis").exists()
        assert first.client().files.list().data == []
    finally:
        assert first.interrupt() == 0


def test_a_component_left_out_can_join_from_stack_env(data_dir: Path) -> None:
    port = free_port()
    up = UpProcess(data_dir, port, "--without", "projector")
    projector: subprocess.Popen[bytes] | None = None
    try:
        assert "projector" not in up.banner.split("Settings to join")[0].split("Storage")[1]
        env_lines = (data_dir / "stack.env").read_text().splitlines()
        environment = {**os.environ, **dict(line.split("=", 1) for line in env_lines)}
        probe_port = free_port()
        projector = subprocess.Popen(
            [sys.executable, "-m", "batch_gateway", "projector", "--port", str(probe_port)],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_ready(f"http://127.0.0.1:{probe_port}/ready")
        uploaded = up.client().files.create(file=("a.jsonl", b"{}\n"), purpose="batch")
        # Read-your-writes holds with the projector in its own process.
        assert [f.id for f in up.client().files.list()] == [uploaded.id]
    finally:
        if projector is not None:
            projector.send_signal(signal.SIGTERM)
            assert projector.wait(timeout=30) == 0
        assert up.interrupt() == 0


def test_invalid_settings_name_the_key() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "batch_gateway", "projector"],
        env={**os.environ, "BATCH_GATEWAY_BATCH_SIZE": "lots"},
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert b"BATCH_GATEWAY_BATCH_SIZE" in result.stderr


def _wait_ready(url: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} never became ready")
