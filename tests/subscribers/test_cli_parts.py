"""The pieces of the client commands that need no server: their arguments, the headers they
send, their exit statuses and their tables."""

from __future__ import annotations

import argparse
import io

import pytest

from batch_gateway.cli import build_parser
from batch_gateway.client.arguments import CLIENT_COMMANDS, header_pair
from batch_gateway.client.connection import Connection, merged_headers
from batch_gateway.client.exit_codes import ExitCode, outcome
from batch_gateway.client.output import size, table


def test_a_header_is_name_equals_value_with_the_value_trimmed() -> None:
    assert header_pair("X-MaaS-Username=team-a") == ("X-MaaS-Username", "team-a")
    assert header_pair("Authorization= Bearer k=v ") == ("Authorization", "Bearer k=v")
    assert header_pair("X-Empty=") == ("X-Empty", "")


@pytest.mark.parametrize("text", ["X-MaaS-Username", "=value", "bad name=1", "X:Y=1"])
def test_a_header_without_a_name_and_equals_is_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="wants NAME=VALUE"):
        header_pair(text)


def test_a_header_value_with_a_line_break_is_refused() -> None:
    # It would end the header early and smuggle in another one.
    with pytest.raises(argparse.ArgumentTypeError, match="line break"):
        header_pair("X-A=1\r\nX-Injected: 2")


def test_the_last_spelling_of_a_header_name_is_the_one_sent() -> None:
    pairs = [("X-MaaS-Username", "a"), ("X-Other", "1"), ("x-maas-username", "b")]

    assert merged_headers(pairs) == {"x-maas-username": "b", "X-Other": "1"}


def test_every_client_command_takes_the_connection_options_and_json() -> None:
    parser = build_parser()
    commands = [[name] for name in CLIENT_COMMANDS if name != "files"]
    commands += [["files", name] for name in ("ls", "upload", "get", "rm")]
    positional = {"submit": ["in.jsonl", "--endpoint", "/v1/chat/completions"]}
    for command in commands:
        arguments = [*command, *positional.get(command[-1], [])]
        if command[-1] in ("get", "cancel", "tail", "download", "upload", "rm"):
            arguments.append("some-id")
        args = parser.parse_args([*arguments, "--header", "A=1", "--header", "B=2", "--json"])

        connection = Connection.of(args, environ={"OPENAI_BASE_URL": "http://h/v1"})

        assert args.json, command
        assert connection.headers == {"A": "1", "B": "2"}, command
        assert connection.base_url == "http://h/v1"


def test_the_help_of_a_client_command_ends_with_the_exit_statuses() -> None:
    parser = build_parser()
    with pytest.raises(SystemExit) as exited:
        parser.parse_args(["tail", "--help"])
    assert exited.value.code == 0

    help_text = _help_of(parser, "tail")
    assert "exit status:" in help_text
    for code in ExitCode:
        assert f"\n  {code.value:<4} " in help_text, code


def test_the_exit_statuses_are_the_documented_numbers() -> None:
    # Scripts test these numbers: README, ADR 0032 and `--help` promise them.
    assert {code.name: code.value for code in ExitCode} == {
        "OK": 0,
        "BATCH_FAILED": 1,
        "USAGE": 2,
        "BATCH_EXPIRED": 3,
        "BATCH_CANCELLED": 4,
        "REFUSED": 5,
        "UNAVAILABLE": 6,
        "LOCAL_FILE": 7,
        "INTERRUPTED": 130,
    }


def test_the_exit_status_is_the_outcome_of_the_batch() -> None:
    assert [outcome(status) for status in ("completed", "failed", "expired", "cancelled")] == [
        0,
        1,
        3,
        4,
    ]
    with pytest.raises(ValueError, match="in_progress"):
        outcome("in_progress")


def test_a_table_aligns_its_columns_and_pads_not_the_last() -> None:
    out = io.StringIO()

    table(["ID", "STATUS", "NAME"], [["a", "completed", "x"], ["bbbb", "failed", "longer"]], out)

    assert out.getvalue().splitlines() == [
        "ID    STATUS     NAME",
        "a     completed  x",
        "bbbb  failed     longer",
    ]


def test_sizes_are_in_binary_units() -> None:
    assert [size(n) for n in (0, 1023, 1024, 1536, 5 * 1024**3)] == [
        "0 B",
        "1023 B",
        "1.0 KiB",
        "1.5 KiB",
        "5.0 GiB",
    ]


def _help_of(parser: argparse.ArgumentParser, command: str) -> str:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return str(action.choices[command].format_help())
    raise AssertionError("no subcommands")
