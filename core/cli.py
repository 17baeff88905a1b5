"""`batch-gateway`: one command line for every component and for the whole stack."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence

from batch_gateway import event_loop
from batch_gateway.client.commands import CLIENT_COMMANDS, add_client_commands, run_client_command
from batch_gateway.gateway.settings import ApiServerSettings
from batch_gateway.gc.arguments import add_gc_arguments, gc_overrides
from batch_gateway.gc.settings import GcSettings
from batch_gateway.logs import configure_logging
from batch_gateway.processors.settings import ProcessorSettings, require_webhook_secret
from batch_gateway.projections.settings import ProjectorSettings
from batch_gateway.settings import SettingsError, load_settings, require_secrets_key
from batch_gateway.simulator import SimulatorSettings
from batch_gateway.simulator.arguments import add_simulator_arguments, simulator_overrides
from batch_gateway.stack.up import add_up_arguments, run_up
from batch_gateway.tracing import configure_tracing, shutdown_tracing


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="batch-gateway",
        description="An OpenAI-compatible Batch API for llm-d / vLLM inference clusters.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    add_up_arguments(
        commands.add_parser("up", help="run the whole system on this machine, in one command")
    )
    api = commands.add_parser("apiserver", help="serve the OpenAI-compatible HTTP API")
    api.add_argument("--host", help="address to listen on (BATCH_GATEWAY_HOST)")
    api.add_argument("--port", type=int, help="port to listen on (BATCH_GATEWAY_PORT)")
    projector = commands.add_parser("projector", help="fold the event log into PostgreSQL")
    projector.add_argument("--host", help="address of /health, /ready, /metrics")
    projector.add_argument("--port", type=int, help="port of /health, /ready, /metrics")
    projector.add_argument(
        "--rebuild",
        action="store_true",
        help="fold the whole history (archive, then Redis) into --postgres-schema, then exit",
    )
    projector.add_argument(
        "--postgres-schema", help="schema to project into (BATCH_GATEWAY_POSTGRES_SCHEMA)"
    )
    processor = commands.add_parser("processor", help="validate and execute batch jobs")
    processor.add_argument("--host", help="address of /health, /ready, /metrics")
    processor.add_argument("--port", type=int, help="port of /health, /ready, /metrics")
    add_gc_arguments(
        commands.add_parser("gc", help="expire files and batches, delete what is left over")
    )
    add_simulator_arguments(
        commands.add_parser(
            "simulator",
            help="serve a simulated OpenAI-compatible inference endpoint (tests, benchmarks)",
        )
    )
    add_client_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    # Each component is imported only when it runs: a process then registers, and serves on
    # /metrics, its own component's metrics and none of the others'.
    args = build_parser().parse_args(argv)
    overrides = {k: v for k in ("host", "port") if (v := getattr(args, k, None)) is not None}
    try:
        if args.command in CLIENT_COMMANDS:
            sys.exit(run_client_command(args))
        if args.command == "up":
            sys.exit(run_up(args))
        elif args.command == "apiserver":
            api_settings = load_settings(ApiServerSettings, os.environ, overrides)
            require_secrets_key(api_settings)
            configure_logging("apiserver", api_settings.log_level)
            configure_tracing("apiserver")
            from batch_gateway.gateway.component import run_apiserver

            event_loop.run(run_apiserver(api_settings), api_settings.event_loop)
        elif args.command == "projector":
            if args.postgres_schema:
                overrides["postgres_schema"] = args.postgres_schema
            projector_settings = load_settings(ProjectorSettings, os.environ, overrides)
            configure_logging("projector", projector_settings.log_level)
            configure_tracing("projector")
            from batch_gateway.projections.component import rebuild_projection, run_projector

            if args.rebuild:
                event_loop.run(
                    rebuild_projection(projector_settings), projector_settings.event_loop
                )
            else:
                event_loop.run(
                    _until_signalled(lambda stop: run_projector(projector_settings, stop)),
                    projector_settings.event_loop,
                )
        elif args.command == "processor":
            processor_settings = load_settings(ProcessorSettings, os.environ, overrides)
            require_secrets_key(processor_settings)
            require_webhook_secret(processor_settings)
            configure_logging("processor", processor_settings.log_level)
            configure_tracing("processor")
            from batch_gateway.processors.component import run_processor

            event_loop.run(
                _until_signalled(lambda stop: run_processor(processor_settings, stop)),
                processor_settings.event_loop,
            )
        elif args.command == "gc":
            gc_settings = load_settings(GcSettings, os.environ, gc_overrides(args))
            require_secrets_key(gc_settings)
            configure_logging("gc", gc_settings.log_level)
            configure_tracing("gc")
            from batch_gateway.gc.component import run_gc

            event_loop.run(
                _until_signalled(lambda stop: run_gc(gc_settings, stop, once=args.once)),
                gc_settings.event_loop,
            )
        elif args.command == "simulator":
            simulator_settings = load_settings(
                SimulatorSettings, os.environ, simulator_overrides(args)
            )
            configure_logging("simulator", simulator_settings.log_level)
            from batch_gateway.simulator import run_simulator

            asyncio.run(_until_signalled(lambda stop: run_simulator(simulator_settings, stop)))
    except SettingsError as error:
        print(f"batch-gateway {args.command}: invalid settings: {error}", file=sys.stderr)
        sys.exit(2)
    finally:
        shutdown_tracing()  # export the spans still buffered


async def _until_signalled(run: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run a component until SIGTERM or SIGINT, then let it stop cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await run(stop)
