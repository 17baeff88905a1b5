"""The official OpenAI Node SDK runs unchanged against the gateway (ADR 0034): the script
batch_lifecycle.mjs uploads, lists, runs, cancels and provokes errors with it and reports what
it saw; this test checks that report, and the same objects from the server's side through the
Python SDK, so neither side can pass by agreeing with itself."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.harness.batch_helpers import CHAT, jsonl
from tests.harness.executing_stacks import ExecutingStack
from tests.harness.sdk import sdk_client
from tests.sdk_node.conftest import API_KEY, FAST_MODEL, SLOW_MODEL
from tests.sdk_node.node_project import NodeProject

LOCKED_VERSION = json.loads((Path(__file__).parent / "package.json").read_text())["dependencies"][
    "openai"
]
REQUESTS = 12
SLOW_REQUESTS = 8
SCRIPT_TIMEOUT_SECONDS = 150.0


def _requests_file(path: Path, model: str, count: int, prefix: str) -> list[str]:
    ids = [f"{prefix}-{i}" for i in range(count)]
    path.write_bytes(
        jsonl(
            {
                "custom_id": custom_id,
                "method": "POST",
                "url": CHAT,
                "body": {
                    "model": model,
                    "messages": [{"role": "user", "content": f"answer {custom_id}"}],
                },
            }
            for custom_id in ids
        )
    )
    return ids


def _run_script(
    node_project: NodeProject, node_sdk_stack: ExecutingStack, *inputs: Path
) -> dict[str, Any]:
    # The caller's OPENAI_* settings (an organisation, a project) must not reach our stack.
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    environment |= {"OPENAI_BASE_URL": node_sdk_stack.api_base_url, "OPENAI_API_KEY": API_KEY}
    result = node_project.run(
        "batch_lifecycle.mjs",
        *map(str, inputs),
        environment=environment,
        timeout=SCRIPT_TIMEOUT_SECONDS,
    )
    shown = f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.returncode == 0, shown
    report: dict[str, Any] = json.loads(result.stdout)
    assert "failure" not in report, shown
    return report


@pytest.mark.timeout(SCRIPT_TIMEOUT_SECONDS + 150)
def test_the_node_sdk_runs_files_batches_pages_and_errors_unchanged(
    node_project: NodeProject, node_sdk_stack: ExecutingStack, tmp_path: Path
) -> None:
    """Uploads (stream and toFile), retrieval, `for await` over several pages of files and of
    batches, a batch polled to `completed` and its output read, a running batch cancelled, and
    404/400/409 answers as the SDK's NotFoundError/BadRequestError/ConflictError carrying our
    envelope's message, param and code."""
    expected = _requests_file(tmp_path / "requests.jsonl", FAST_MODEL, REQUESTS, "node")
    slow = _requests_file(tmp_path / "slow.jsonl", SLOW_MODEL, SLOW_REQUESTS, "slow")

    report = _run_script(
        node_project, node_sdk_stack, tmp_path / "requests.jsonl", tmp_path / "slow.jsonl"
    )

    assert report["sdk_version"] == LOCKED_VERSION
    files = report["files"]
    assert len(files["uploaded"]) == 5
    assert files["listed"] == files["uploaded"][::-1]
    assert files["list_pages"] == 3
    batch = report["batch"]
    assert batch["status"] == "completed"
    assert batch["statuses_seen"][-1] == "completed"
    assert batch["request_id"]
    assert batch["request_counts"] == {"total": REQUESTS, "completed": REQUESTS, "failed": 0}
    assert sorted(batch["output_custom_ids"]) == sorted(expected)
    assert report["cancelled"]["status"] == "cancelled"
    assert report["cancelled"]["cancel_status"] in ("cancelling", "cancelled")
    assert report["batches_list"] == {"ids": [report["cancelled"]["id"], batch["id"]], "pages": 2}
    errors = report["errors"]
    assert {name: error["class"] for name, error in errors.items()} == {
        "not_found": "NotFoundError",
        "file_not_found": "NotFoundError",
        "bad_request": "BadRequestError",
        "conflict": "ConflictError",
    }
    # The script asks for an id of the right shape that names no batch.
    assert errors["not_found"] == {
        "class": "NotFoundError",
        "status": 404,
        "type": "invalid_request_error",
        "message": f"No such Batch object: batch_{'0' * 32}",
        "param": "batch_id",
        "code": None,
    }
    assert (errors["bad_request"]["status"], errors["bad_request"]["param"]) == (400, "endpoint")
    assert errors["bad_request"]["code"] == "invalid_value"
    assert errors["conflict"]["status"] == 409
    assert errors["conflict"]["tries"] == 1

    # The server's side of the same objects, through the other official SDK.
    with sdk_client(node_sdk_stack.stack, api_key=API_KEY) as client:
        stored = client.batches.retrieve(batch["id"])
        assert stored.status == "completed"
        assert stored.metadata == batch["metadata"]
        assert stored.output_file_id == batch["output_file_id"]
        assert stored.error_file_id is None
        content = client.files.content(batch["output_file_id"]).content
        lines = [json.loads(line) for line in content.splitlines()]
        assert Counter(line["custom_id"] for line in lines) == Counter(expected)
        assert all(line["response"]["status_code"] == 200 for line in lines)
        cancelled = client.batches.retrieve(report["cancelled"]["id"])
        assert cancelled.status == "cancelled"
        assert cancelled.request_counts is not None
        assert cancelled.request_counts.completed == 0
        assert cancelled.error_file_id is not None
        unsent = [
            json.loads(line)
            for line in client.files.content(cancelled.error_file_id).content.splitlines()
        ]
        assert sorted(line["custom_id"] for line in unsent) == sorted(slow)
        assert {line["error"]["code"] for line in unsent} == {"batch_cancelled"}
        assert {f.id for f in client.files.list(purpose="batch")} == set(files["uploaded"])
    assert node_sdk_stack.simulator.stats().by_status.get("200", 0) == REQUESTS
