"""`--header` on every client command: against a stack with no API keys (behind an auth proxy,
as in llm-d) the tenant is the `X-MaaS-Username` header, and the CLI's only way to name it.

A batch created under a tenant is that tenant's alone: with the header `get`, `ls`, `tail` and
`files ls` see it; without it they answer as the `default` tenant, for whom it does not exist.
The stack only validates, so the batch stays `in_progress` until the gc expires it.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from batch_gateway.client.exit_codes import ExitCode
from batch_gateway.gc.component import run_gc
from batch_gateway.gc.settings import GcSettings
from batch_gateway.settings import settings_for
from batch_gateway.stack.redis_server import free_port
from tests.harness.batch_helpers import CHAT, chat_file, wait_until_status
from tests.harness.live_stack import LiveStack
from tests.harness.sdk import sdk_client
from tests.subscribers.cli_runs import base_url_environment, printed_json, run_cli

TENANT = "team-cli"
EXPIRING_TENANT = "team-expiring"  # a tenant of its own, so that the other test's `ls` sees one
DAY = 86_400


@pytest.fixture
def environment(module_stack: LiveStack) -> dict[str, str]:
    assert module_stack.settings.tenant_header == "X-MaaS-Username"
    assert not module_stack.settings.api_keys
    return base_url_environment(f"{module_stack.base_url}/v1", "unused")


def test_a_batch_submitted_under_a_tenant_header_is_that_tenants_alone(
    module_stack: LiveStack, environment: dict[str, str], tmp_path: Path
) -> None:
    source = tmp_path / "input.jsonl"
    source.write_bytes(chat_file(2))
    header = ("--header", f"X-MaaS-Username={TENANT}")

    created = printed_json(
        run_cli(
            "submit", str(source), "--endpoint", CHAT, "--json", *header, environment=environment
        )
    )
    batch_id = created["id"]
    shown = printed_json(run_cli("get", batch_id, "--json", *header, environment=environment))
    listed = printed_json(run_cli("ls", "--json", *header, environment=environment))
    files = printed_json(run_cli("files", "ls", "--json", *header, environment=environment))
    # The header's name is case-insensitive, as HTTP has it; the last of two spellings wins.
    respelled = run_cli(
        "get",
        batch_id,
        "--header",
        "x-maas-username=someone-else",
        "--header",
        f"x-MaaS-username={TENANT}",
        environment=environment,
    )
    unnamed = run_cli("get", batch_id, environment=environment)
    default_listing = printed_json(run_cli("ls", "--json", environment=environment))
    default_files = printed_json(run_cli("files", "ls", "--json", environment=environment))

    assert shown["id"] == batch_id
    assert [batch["id"] for batch in listed] == [batch_id]
    assert [file["id"] for file in files] == [created["input_file_id"]]
    assert respelled.returncode == 0, respelled.stderr
    assert unnamed.returncode == ExitCode.REFUSED
    assert unnamed.stderr == f"batch-gateway get: No such Batch object: {batch_id} (HTTP 404)\n"
    assert batch_id not in [batch["id"] for batch in default_listing]
    assert created["input_file_id"] not in [file["id"] for file in default_files]


def test_tail_with_the_tenant_header_follows_the_batch_to_its_expiry(
    module_stack: LiveStack, environment: dict[str, str]
) -> None:
    with sdk_client(module_stack, default_headers={"X-MaaS-Username": EXPIRING_TENANT}) as client:
        file_id = client.files.create(file=("input.jsonl", chat_file(3)), purpose="batch").id
        batch = client.batches.create(input_file_id=file_id, endpoint=CHAT, completion_window="24h")
        wait_until_status(client, batch.id, {"in_progress"})
    expire(module_stack, at=batch.created_at + DAY)
    header = ("--header", f"X-MaaS-Username={EXPIRING_TENANT}")

    followed = run_cli("tail", batch.id, *header, environment=environment)
    as_json = run_cli("tail", batch.id, "--json", *header, environment=environment)
    waited = run_cli("get", batch.id, "--wait", *header, environment=environment)
    unnamed = run_cli("tail", batch.id, environment=environment)

    assert followed.returncode == ExitCode.BATCH_EXPIRED, followed.stderr
    assert followed.stdout.splitlines()[-1].startswith(f"{batch.id} expired: ")
    assert as_json.returncode == ExitCode.BATCH_EXPIRED, as_json.stderr
    documents = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert documents[-1]["type"] == "batch.expired"
    assert {document["tenant"] for document in documents} == {EXPIRING_TENANT}
    assert waited.returncode == ExitCode.BATCH_EXPIRED, waited.stderr
    # Without the header, the SSE stream answers as to the `default` tenant: no such batch.
    assert unnamed.returncode == ExitCode.REFUSED
    assert unnamed.stderr == f"batch-gateway tail: No such Batch object: {batch.id} (HTTP 404)\n"


def expire(stack: LiveStack, *, at: float) -> None:
    """One round of the gc at time `at`: the batch's completion window has passed."""
    settings = settings_for(GcSettings, stack.settings, port=free_port())
    asyncio.run(run_gc(settings, asyncio.Event(), lambda: at, once=True))
