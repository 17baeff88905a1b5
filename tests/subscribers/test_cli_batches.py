"""`batch-gateway ls | get | cancel`, `--json`, and the exit statuses of the client commands, run
as subprocesses against a stack that executes batches on a slow simulator."""

from __future__ import annotations

import json
from pathlib import Path

from batch_gateway.client.exit_codes import ExitCode
from tests.harness.batch_helpers import CHAT, chat_file, wait_until_status
from tests.harness.sse import aggregate_entries
from tests.subscribers.cli_runs import (
    api_client,
    cli_environment,
    events_printed,
    key_values_printed,
    printed_json,
    run_cli,
    start_batch,
)
from tests.subscribers.executing_stack import ExecutingStack

MISSING_BATCH = "batch_" + "0" * 32
NOT_JSON = b"this line is not JSON\n"  # fails validation: the batch ends `failed`


def test_ls_shows_the_newest_batches_as_an_aligned_table(executing_stack: ExecutingStack) -> None:
    with api_client(executing_stack) as client:
        ids = [start_batch(client, chat_file(2)) for _ in range(3)]

    run = run_cli("ls", "--limit", "2", environment=cli_environment(executing_stack))

    assert run.returncode == 0, run.stderr
    header, *rows = run.stdout.splitlines()
    assert header.split() == ["ID", "STATUS", "CREATED", "REQUESTS", "FAILED", "ENDPOINT"]
    assert [row.split()[0] for row in rows] == [ids[2], ids[1]]
    for row in rows:  # every cell starts under its heading
        assert row[header.index("STATUS") :].split()[0] in (
            "validating",
            "in_progress",
            "finalizing",
            "completed",
        )
        assert row[header.index("ENDPOINT") :] == CHAT
    # Where the next page starts, for a person; stdout keeps only the table.
    assert run.stderr == f"(more: --after {ids[1]})\n"


def test_ls_json_pages_with_after_and_filters_by_status(executing_stack: ExecutingStack) -> None:
    environment = cli_environment(executing_stack)
    with api_client(executing_stack) as client:
        ids = [start_batch(client, chat_file(2)) for _ in range(3)]
        cancelled = start_batch(client, chat_file(40))
        client.batches.cancel(cancelled)
        wait_until_status(client, cancelled, {"cancelled"}, timeout=30)

        page = printed_json(run_cli("ls", "--json", "--after", ids[2], environment=environment))
        everything = [batch.id for batch in client.batches.list(limit=100)]
        only_cancelled = printed_json(
            run_cli("ls", "--status", "cancelled", "--json", environment=environment)
        )
        expected = [b.id for b in client.batches.list(limit=100) if b.status == "cancelled"]

    assert [batch["id"] for batch in page] == everything[everything.index(ids[2]) + 1 :][:20]
    assert all(batch["object"] == "batch" for batch in page)
    assert [batch["id"] for batch in only_cancelled] == expected
    assert cancelled in expected


def test_ls_refuses_an_unknown_status_as_a_usage_error(executing_stack: ExecutingStack) -> None:
    run = run_cli("ls", "--status", "done", environment=cli_environment(executing_stack))

    assert run.returncode == ExitCode.USAGE
    assert "argument --status: invalid choice: 'done'" in run.stderr
    assert run.stdout == ""


def test_get_shows_a_batch_as_aligned_key_values_and_as_json(
    executing_stack: ExecutingStack,
) -> None:
    environment = cli_environment(executing_stack)
    with api_client(executing_stack) as client:
        batch_id = start_batch(client, chat_file(3), metadata={"project": "cli", "team": "a"})
        batch = wait_until_status(client, batch_id, {"completed"}, timeout=30)

        shown = run_cli("get", batch_id, environment=environment)
        document = printed_json(run_cli("get", batch_id, "--json", environment=environment))

    assert shown.returncode == 0, shown.stderr
    view = key_values_printed(shown.stdout)
    assert view["id"] == batch_id
    assert view["status"] == "completed"
    assert view["endpoint"] == CHAT
    assert view["request_counts"] == "3 completed, 0 failed of 3"
    assert view["output_file_id"] == batch.output_file_id
    assert view["metadata"] == "project=cli, team=a"
    assert "error_file_id" not in view  # nothing is shown for what the batch has not
    assert document == batch.to_dict(mode="json")


def test_tail_json_prints_every_event_document_once_a_line(
    executing_stack: ExecutingStack,
) -> None:
    with api_client(executing_stack) as client:
        batch_id = start_batch(client, chat_file(20))

    run = run_cli("tail", batch_id, "--json", environment=cli_environment(executing_stack))

    assert run.returncode == 0, run.stderr
    # The stream ends every second: resumed, yet each event exactly once, as stored.
    stored = aggregate_entries(executing_stack.stack, batch_id)
    assert run.stdout.splitlines() == [entry.document for entry in stored]
    documents = [json.loads(line) for line in run.stdout.splitlines()]
    assert documents[-1]["type"] == "batch.completed"
    assert {document["aggregate_id"] for document in documents} == {batch_id}


def test_submit_json_prints_the_batch_and_with_wait_the_batch_as_it_ended(
    executing_stack: ExecutingStack, tmp_path: Path
) -> None:
    environment = cli_environment(executing_stack)
    source = tmp_path / "input.jsonl"
    source.write_bytes(chat_file(8))

    created = printed_json(
        run_cli("submit", str(source), "--endpoint", CHAT, "--json", environment=environment)
    )
    ended = printed_json(
        run_cli(
            "submit", str(source), "--endpoint", CHAT, "--wait", "--json", environment=environment
        )
    )

    assert created["object"] == "batch"
    assert created["status"] == "validating"
    assert ended["status"] == "completed"
    assert ended["request_counts"] == {"total": 8, "completed": 8, "failed": 0}
    assert ended["output_file_id"].startswith("file-")


def test_a_failed_batch_exits_1_from_submit_wait_and_get_wait(
    executing_stack: ExecutingStack, tmp_path: Path
) -> None:
    environment = cli_environment(executing_stack)
    source = tmp_path / "bad.jsonl"
    source.write_bytes(NOT_JSON)

    submitted = run_cli(
        "submit", str(source), "--endpoint", CHAT, "--wait", environment=environment
    )
    batch_id = submitted.stdout.splitlines()[0]
    waited = run_cli("get", batch_id, "--wait", "--json", environment=environment)
    shown = run_cli("get", batch_id, environment=environment)

    assert submitted.returncode == ExitCode.BATCH_FAILED, submitted.stderr
    assert events_printed(submitted.stdout)[-1] == "batch.failed"
    assert f"{batch_id} failed: " in submitted.stdout
    assert "invalid_json_line" in submitted.stdout
    assert waited.returncode == ExitCode.BATCH_FAILED, waited.stderr
    assert json.loads(waited.stdout)["status"] == "failed"
    # Without --wait, `get` did what it was asked: it showed the batch.
    assert shown.returncode == 0, shown.stderr
    view = key_values_printed(shown.stdout)
    assert view["status"] == "failed"
    assert view["error"].startswith("invalid_json_line (line 1): ")


def test_cancel_shows_the_batch_and_a_second_cancel_is_refused_with_409(
    executing_stack: ExecutingStack,
) -> None:
    environment = cli_environment(executing_stack)
    with api_client(executing_stack) as client:
        # 400 requests: some 10 s of work, long enough to be cancelled before they end.
        first, second = start_batch(client, chat_file(400)), start_batch(client, chat_file(400))

        cancelled = run_cli("cancel", first, environment=environment)
        as_json = printed_json(run_cli("cancel", second, "--json", environment=environment))
        wait_until_status(client, first, {"cancelled"}, timeout=30)
        waited = run_cli("get", first, "--wait", environment=environment)
        again = run_cli("cancel", first, environment=environment)

    assert cancelled.returncode == 0, cancelled.stderr
    view = key_values_printed(cancelled.stdout)
    assert view["id"] == first
    assert view["status"] in ("cancelling", "cancelled")
    assert as_json["id"] == second
    assert as_json["status"] in ("cancelling", "cancelled")
    assert waited.returncode == ExitCode.BATCH_CANCELLED, waited.stderr
    assert key_values_printed(waited.stdout)["status"] == "cancelled"
    assert again.returncode == ExitCode.REFUSED
    assert again.stdout == ""
    assert again.stderr == (
        "batch-gateway cancel: Cannot cancel a batch with status 'cancelled'. (HTTP 409)\n"
    )


def test_an_unknown_batch_is_told_on_stderr_with_exit_5(executing_stack: ExecutingStack) -> None:
    environment = cli_environment(executing_stack)
    for command in ("get", "cancel", "download"):
        run = run_cli(command, MISSING_BATCH, "--json", environment=environment)

        assert run.returncode == ExitCode.REFUSED, (command, run.stderr)
        assert run.stdout == ""
        assert run.stderr == (
            f"batch-gateway {command}: No such Batch object: {MISSING_BATCH} (HTTP 404)\n"
        )


def test_download_of_a_batch_without_results_exits_5_and_json_lists_the_saved_files(
    executing_stack: ExecutingStack, tmp_path: Path
) -> None:
    environment = cli_environment(executing_stack)
    with api_client(executing_stack) as client:
        failed = start_batch(client, NOT_JSON)
        wait_until_status(client, failed, {"failed"})
        completed = start_batch(client, chat_file(2))
        batch = wait_until_status(client, completed, {"completed"}, timeout=30)

    nothing = run_cli("download", failed, "-o", str(tmp_path), environment=environment)
    saved = printed_json(
        run_cli("download", completed, "-o", str(tmp_path), "--json", environment=environment)
    )

    assert nothing.returncode == ExitCode.REFUSED
    assert nothing.stderr == (
        f"batch-gateway download: {failed} has no output or error file (status: failed)\n"
    )
    path = tmp_path / f"{completed}_output.jsonl"
    assert saved == [{"id": batch.output_file_id, "kind": "output", "path": str(path)}]
    assert len(path.read_bytes().splitlines()) == 2


def test_a_server_that_cannot_be_reached_exits_6(executing_stack: ExecutingStack) -> None:
    environment = cli_environment(executing_stack, OPENAI_BASE_URL="http://127.0.0.1:9/v1")

    run = run_cli("ls", environment=environment)

    assert run.returncode == ExitCode.UNAVAILABLE
    assert run.stderr.startswith("batch-gateway ls: cannot reach http://127.0.0.1:9/v1: ")


def test_an_input_file_that_cannot_be_read_exits_7(
    executing_stack: ExecutingStack, tmp_path: Path
) -> None:
    missing = tmp_path / "missing.jsonl"

    run = run_cli(
        "submit", str(missing), "--endpoint", CHAT, environment=cli_environment(executing_stack)
    )

    assert run.returncode == ExitCode.LOCAL_FILE
    assert run.stderr.startswith("batch-gateway submit: [Errno 2] No such file or directory")


def test_a_header_or_metadata_without_equals_is_a_usage_error(
    executing_stack: ExecutingStack, tmp_path: Path
) -> None:
    environment = cli_environment(executing_stack)
    runs = {
        "--header": run_cli("ls", "--header", "X-MaaS-Username", environment=environment),
        "--header ": run_cli("tail", MISSING_BATCH, "--header", "a b=c", environment=environment),
        "--metadata": run_cli(
            "submit", "in.jsonl", "--endpoint", CHAT, "--metadata", "x", environment=environment
        ),
    }

    for option, run in runs.items():
        assert run.returncode == ExitCode.USAGE, (option, run.stderr)
        assert f"error: argument {option.strip()}: wants " in run.stderr
        assert run.stdout == ""


def test_a_refused_submit_leaves_no_uploaded_file_behind(
    executing_stack: ExecutingStack, tmp_path: Path
) -> None:
    source = tmp_path / "input.jsonl"
    source.write_bytes(chat_file(2))
    with api_client(executing_stack) as client:
        before = {file.id for file in client.files.list()}
        run = run_cli(
            "submit",
            str(source),
            "--endpoint",
            "/v1/nope",
            environment=cli_environment(executing_stack),
        )
        assert run.returncode == ExitCode.REFUSED, run.stderr
        assert "/v1/nope" in run.stderr
        assert {file.id for file in client.files.list()} == before
