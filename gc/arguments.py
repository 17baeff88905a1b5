"""The command-line arguments of `batch-gateway gc`, apart from the gc itself so that the CLI
can offer them without loading (and registering the metrics of) a component it may not run."""

from __future__ import annotations

import argparse
from typing import Any


def add_gc_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="address of /health, /ready, /metrics")
    parser.add_argument("--port", type=int, help="port of /health, /ready, /metrics")
    parser.add_argument("--once", action="store_true", help="sweep once, then exit (cron, tests)")
    parser.add_argument(
        "--dry-run", action="store_true", help="log what would be done; change nothing"
    )


def gc_overrides(args: argparse.Namespace) -> dict[str, Any]:
    overrides: dict[str, Any] = {
        k: v for k in ("host", "port") if (v := getattr(args, k)) is not None
    }
    if args.dry_run:
        overrides["dry_run"] = True
    return overrides
