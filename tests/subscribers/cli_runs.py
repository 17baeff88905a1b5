"""Running `batch-gateway` client commands and the examples as the user would: subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from openai import OpenAI

from tests.harness.batch_helpers import CHAT
from tests.subscribers.executing_stack import API_KEY, ExecutingStack

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def cli_environment(stack: ExecutingStack, **changes: str) -> dict[str, str]:
    """The caller's environment with the OpenAI variables pointing at `stack`."""
    return base_url_environment(stack.api_base_url, API_KEY, **changes)


def base_url_environment(base_url: str, api_key: str, **changes: str) -> dict[str, str]:
    """The caller's environment with the OpenAI variables, and only those, set anew."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    return environment | {"OPENAI_BASE_URL": base_url, "OPENAI_API_KEY": api_key, **changes}


def run_cli(
    *args: str, environment: Mapping[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "batch_gateway", *args],
        capture_output=True,
        text=True,
        env=dict(environment),
        timeout=timeout,
        check=False,
    )


def printed_json(run: subprocess.CompletedProcess[str]) -> Any:
    """The one JSON document a `--json` run printed (after checking that it succeeded)."""
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def events_printed(stdout: str) -> list[str]:
    """The event column of `tail`'s lines (one per event when stdout is not a terminal)."""
    return [line.split()[0] for line in stdout.splitlines() if line.startswith("batch.")]


def key_values_printed(stdout: str) -> dict[str, str]:
    """The `key: value` lines of `get`, `cancel` or `files get`, after checking that the values
    are aligned in one column (a repeated key, such as `error`, keeps its last value)."""
    lines = stdout.splitlines()
    columns = {len(line) - len(line.split(":", 1)[1].lstrip()) for line in lines}
    assert len(columns) == 1, stdout
    return {key: value.strip() for key, value in (line.split(":", 1) for line in lines)}


def start_batch(client: OpenAI, content: bytes, **params: Any) -> str:
    """Upload `content` and start a chat batch on it; its id."""
    file_id = client.files.create(file=("input.jsonl", content), purpose="batch").id
    return client.batches.create(
        input_file_id=file_id, endpoint=CHAT, completion_window="24h", **params
    ).id


def api_client(stack: ExecutingStack) -> OpenAI:
    return OpenAI(base_url=stack.api_base_url, api_key=API_KEY, max_retries=0)
