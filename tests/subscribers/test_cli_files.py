"""`batch-gateway files ls | upload | get | rm`, run as subprocesses against a live stack, in
their human and their `--json` form."""

from __future__ import annotations

from pathlib import Path

from batch_gateway.client.exit_codes import ExitCode
from tests.harness.batch_helpers import chat_file
from tests.subscribers.cli_runs import (
    api_client,
    cli_environment,
    key_values_printed,
    printed_json,
    run_cli,
)
from tests.subscribers.executing_stack import ExecutingStack

HOUR = 3600
THIRTY_DAYS = 30 * 24 * HOUR


def test_files_upload_shows_the_file_and_json_prints_the_api_object(
    executing_stack: ExecutingStack, tmp_path: Path
) -> None:
    environment = cli_environment(executing_stack)
    source = tmp_path / "requests.jsonl"
    source.write_bytes(chat_file(3))

    shown = run_cli("files", "upload", str(source), environment=environment)
    document = printed_json(
        run_cli(
            "files",
            "upload",
            str(source),
            "--purpose",
            "user_data",
            "--expires-after",
            str(HOUR),
            "--json",
            environment=environment,
        )
    )

    assert shown.returncode == 0, shown.stderr
    view = key_values_printed(shown.stdout)
    assert view["filename"] == "requests.jsonl"
    assert view["purpose"] == "batch"
    assert view["bytes"] == str(source.stat().st_size)
    with api_client(executing_stack) as client:
        uploaded = client.files.retrieve(view["id"])
        assert uploaded.expires_at == uploaded.created_at + THIRTY_DAYS  # the server's default
        assert document == client.files.retrieve(document["id"]).to_dict(mode="json")
    assert document["purpose"] == "user_data"
    assert document["expires_at"] == document["created_at"] + HOUR


def test_files_ls_lists_the_newest_as_a_table_filtered_by_purpose(
    executing_stack: ExecutingStack,
) -> None:
    environment = cli_environment(executing_stack)
    with api_client(executing_stack) as client:
        kept = [
            client.files.create(file=(f"data-{i}.jsonl", b"{}\n"), purpose="user_data").id
            for i in range(2)
        ]
        client.files.create(file=("input.jsonl", chat_file(1)), purpose="batch")
        expected = [file.id for file in client.files.list(purpose="user_data")]

    table = run_cli(
        "files", "ls", "--purpose", "user_data", "--limit", "1", environment=environment
    )
    listed = printed_json(
        run_cli("files", "ls", "--json", "--limit", "100", environment=environment)
    )
    purposeful = printed_json(
        run_cli("files", "ls", "--purpose", "user_data", "--json", environment=environment)
    )

    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split() == ["ID", "PURPOSE", "SIZE", "CREATED", "EXPIRES", "FILENAME"]
    assert len(rows) == 1
    assert rows[0].split()[:2] == [kept[1], "user_data"]
    assert rows[0][header.index("SIZE") :].startswith("3 B ")
    assert rows[0][header.index("EXPIRES") :].startswith("never ")
    assert rows[0].endswith("  data-1.jsonl")
    assert table.stderr == f"(more: --after {kept[1]})\n"
    assert {file["purpose"] for file in listed} >= {"batch", "user_data"}
    assert [file["id"] for file in purposeful] == expected[:20]
    assert purposeful[0]["object"] == "file"


def test_files_get_and_rm_and_the_404_after(
    executing_stack: ExecutingStack,
) -> None:
    environment = cli_environment(executing_stack)
    with api_client(executing_stack) as client:
        file_id = client.files.create(file=("doomed.jsonl", b"{}\n"), purpose="user_data").id

    shown = printed_json(run_cli("files", "get", file_id, "--json", environment=environment))
    removed = run_cli("files", "rm", file_id, environment=environment)
    again = run_cli("files", "rm", file_id, "--json", environment=environment)
    gone = run_cli("files", "get", file_id, environment=environment)

    assert shown["id"] == file_id
    assert shown["filename"] == "doomed.jsonl"
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout == f"{file_id} deleted\n"
    for command, run in (("rm", again), ("get", gone)):
        assert run.returncode == ExitCode.REFUSED, run.stderr
        assert run.stdout == ""
        assert (
            run.stderr
            == f"batch-gateway files {command}: No such File object: {file_id} (HTTP 404)\n"
        )


def test_files_rm_json_prints_the_deletion(executing_stack: ExecutingStack) -> None:
    with api_client(executing_stack) as client:
        file_id = client.files.create(file=("x.jsonl", b"{}\n"), purpose="user_data").id

    run = run_cli("files", "rm", file_id, "--json", environment=cli_environment(executing_stack))

    assert printed_json(run) == {"id": file_id, "object": "file", "deleted": True}


def test_an_upload_the_api_refuses_exits_5_with_its_message(
    executing_stack: ExecutingStack, tmp_path: Path
) -> None:
    source = tmp_path / "x.jsonl"
    source.write_bytes(b"{}\n")

    run = run_cli(
        "files",
        "upload",
        str(source),
        "--expires-after",
        "60",
        environment=cli_environment(executing_stack),
    )

    assert run.returncode == ExitCode.REFUSED
    assert run.stderr == (
        "batch-gateway files upload: expires_after[seconds] must be an integer between "
        "3600 and 2592000. (HTTP 400)\n"
    )
