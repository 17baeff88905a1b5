"""Running `batch-gateway` client commands and the examples as the user would: subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from openai import OpenAI

from tests.subscribers.executing_stack import API_KEY, ExecutingStack

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def cli_environment(stack: ExecutingStack, **changes: str) -> dict[str, str]:
    """The caller's environment with the OpenAI variables pointing at `stack`."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    return environment | {
        "OPENAI_BASE_URL": stack.api_base_url,
        "OPENAI_API_KEY": API_KEY,
        **changes,
    }


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


def api_client(stack: ExecutingStack) -> OpenAI:
    return OpenAI(base_url=stack.api_base_url, api_key=API_KEY, max_retries=0)
