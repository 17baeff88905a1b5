"""`batch-gateway submit | tail | download`, run as subprocesses against a stack that executes
batches on a slow simulator and ends every event stream after a second (so `tail` resumes)."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from pathlib import Path

from openai import OpenAI

from batch_gateway.client.exit_codes import ExitCode
from tests.harness.batch_helpers import CHAT, chat_file, chat_line, jsonl, wait_until_status
from tests.harness.sse import aggregate_entries
from tests.subscribers.cli_runs import api_client, cli_environment, events_printed, run_cli
from tests.subscribers.executing_stack import API_KEY, FAILING_MODEL, ExecutingStack


def test_submit_wait_follows_the_batch_to_completion_across_reconnections(
    executing_stack: ExecutingStack, tmp_path: Path
) -> None:
    # 100 requests at 0.1 s, 4 at a time: about 3 s, while every stream ends after 1 s.
    source = tmp_path / "input.jsonl"
    source.write_bytes(chat_file(100))

    run = run_cli(
        "submit",
        str(source),
        "--endpoint",
        CHAT,
        "--metadata",
        "project=cli",
        "--wait",
        environment=cli_environment(executing_stack),
    )

    assert run.returncode == 0, run.stderr
    batch_id = run.stdout.splitlines()[0]
    assert re.fullmatch(r"batch_[0-9a-f]{32}", batch_id)
    assert "resuming after" in run.stderr
    # Every event of the batch once, in order, however often the stream was resumed.
    stored = aggregate_entries(executing_stack.stack, batch_id)
    assert events_printed(run.stdout) == [entry.type for entry in stored]
    assert events_printed(run.stdout).count("batch.progress") >= 3
    assert re.search(r" [0-9.]+ req/s  ETA \d+s", run.stdout), run.stdout
    summary = run.stdout.splitlines()[-1]
    assert summary.startswith(f"{batch_id} completed: 100 completed, 0 failed of 100; output ")
    with api_client(executing_stack) as client:
        assert client.batches.retrieve(batch_id).metadata == {"project": "cli"}


def test_tail_exits_4_when_the_batch_is_cancelled(executing_stack: ExecutingStack) -> None:
    with api_client(executing_stack) as client:
        batch = create(client, chat_file(40))
        client.batches.cancel(batch)

    # The flags win over the environment, which points nowhere here.
    environment = cli_environment(
        executing_stack, OPENAI_BASE_URL="http://127.0.0.1:9/v1", OPENAI_API_KEY="wrong"
    )
    run = run_cli(
        "tail",
        batch,
        "--base-url",
        executing_stack.api_base_url,
        "--api-key",
        API_KEY,
        environment=environment,
    )

    assert run.returncode == ExitCode.BATCH_CANCELLED, run.stderr
    assert events_printed(run.stdout)[-1] == "batch.cancelled"
    assert run.stdout.splitlines()[-1].startswith(f"{batch} cancelled: ")


def test_tail_of_an_unknown_batch_fails(executing_stack: ExecutingStack) -> None:
    missing = "batch_" + "0" * 32

    run = run_cli("tail", missing, environment=cli_environment(executing_stack))

    assert run.returncode == ExitCode.REFUSED
    assert run.stderr == f"batch-gateway tail: No such Batch object: {missing} (HTTP 404)\n"
    assert run.stdout == ""


def test_download_writes_the_output_and_error_files_byte_for_byte(
    executing_stack: ExecutingStack, tmp_path: Path
) -> None:
    lines = [chat_line(f"ok-{i}") for i in range(4)] + [chat_line("bad", FAILING_MODEL)]
    with api_client(executing_stack) as client:
        batch_id = create(client, jsonl(lines))
        batch = wait_until_status(client, batch_id, {"completed"}, timeout=30)
        assert batch.output_file_id is not None
        assert batch.error_file_id is not None
        output = client.files.content(batch.output_file_id).content
        errors = client.files.content(batch.error_file_id).content

    run = run_cli(
        "download",
        batch_id,
        "-o",
        str(tmp_path / "out"),
        environment=cli_environment(executing_stack),
    )

    assert run.returncode == 0, run.stderr
    output_path = tmp_path / "out" / f"{batch_id}_output.jsonl"
    error_path = tmp_path / "out" / f"{batch_id}_error.jsonl"
    assert run.stdout.splitlines() == [str(output_path), str(error_path)]
    assert output_path.read_bytes() == output
    assert error_path.read_bytes() == errors
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == sorted(
        [output_path.name, error_path.name]
    )


def test_tail_redraws_one_line_on_a_terminal(executing_stack: ExecutingStack) -> None:
    with api_client(executing_stack) as client:
        batch = create(client, chat_file(40))

    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "batch_gateway", "tail", batch],
        stdout=follower,
        stderr=subprocess.DEVNULL,
        env=cli_environment(executing_stack),
    )
    os.close(follower)
    shown = read_all(leader)
    assert process.wait(timeout=30) == 0

    text = shown.decode()
    assert text.count("\r") > 3
    assert "\x1b[K" in text
    # Everything before the summary is one line, redrawn in place.
    assert text.rstrip("\r\n").split("\r\n")[-1].startswith(f"{batch} completed: 40 completed")
    assert text.count("\r\n") == 3  # the batch id, the redrawn line, the summary


def create(client: OpenAI, content: bytes) -> str:
    file_id = client.files.create(file=("input.jsonl", content), purpose="batch").id
    return client.batches.create(input_file_id=file_id, endpoint=CHAT, completion_window="24h").id


def read_all(fd: int) -> bytes:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the other side is closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)
