"""The flags of `batch-gateway simulator`: the common settings; the rest (per-model behaviour,
served models, ...) come from `BATCH_GATEWAY_*` variables or the YAML file."""

from __future__ import annotations

import argparse
from typing import Any

# flag -> (setting, type, help)
_FLAGS: dict[str, tuple[str, type, str]] = {
    "--host": ("host", str, "address to listen on (BATCH_GATEWAY_HOST, default 127.0.0.1)"),
    "--port": ("port", int, "port to listen on, 0 for any free one (default 8100)"),
    "--latency": ("latency_seconds", float, "seconds per request (default 0)"),
    "--latency-per-token": (
        "latency_per_output_token_seconds",
        float,
        "seconds per output token, added to --latency (default 0)",
    ),
    "--jitter": ("jitter", float, "latency varies uniformly by +/- this fraction (default 0)"),
    "--capacity": ("capacity", int, "requests served at once; the rest queue (default 256)"),
    "--max-output-tokens": (
        "max_output_tokens",
        int,
        "output length when a request names none (default 16)",
    ),
    "--rate-429": ("rate_429", float, "share of requests answered 429 with Retry-After"),
    "--rate-500": ("rate_500", float, "share of requests answered 500"),
    "--rate-503": ("rate_503", float, "share of requests answered 503"),
    "--rate-timeout": ("rate_timeout", float, "share of requests held --timeout, then 504"),
    "--rate-disconnect": (
        "rate_disconnect",
        float,
        "share of requests whose connection is dropped unanswered",
    ),
    "--rate-dropped": (
        "rate_dropped",
        float,
        "share of requests shed as llm-d's router does (429 + x-llm-d-request-dropped-reason)",
    ),
    "--prompt-token-latency": (
        "latency_per_prompt_token_seconds",
        float,
        "prefill seconds per prompt token the prefix cache does not hold (default 0)",
    ),
    "--load-slowdown": (
        "load_slowdown",
        float,
        "decoding slows by this factor times the share of busy slots (default 0)",
    ),
    "--prefix-cache-size": (
        "prefix_cache_size",
        int,
        "prompt prefixes the prefix cache holds, least recently used out (default 0: none)",
    ),
    "--timeout": ("timeout_seconds", float, "how long a timed-out request is held (default 30)"),
    "--retry-after": ("retry_after_seconds", int, "Retry-After of a 429, seconds (default 1)"),
    "--seed": ("seed", int, "make injected faults and jitter reproducible"),
}


def add_simulator_arguments(parser: argparse.ArgumentParser) -> None:
    for flag, (setting, kind, help_text) in _FLAGS.items():
        metavar = {str: "ADDRESS", int: "N", float: "X"}[kind]
        parser.add_argument(flag, dest=setting, type=kind, metavar=metavar, help=help_text)
    parser.add_argument(
        "--served-model",
        dest="served_models",
        action="append",
        metavar="MODEL",
        help="a model listed by /v1/models; repeat for more (default sim-model)",
    )
    parser.add_argument(
        "--strict-models",
        dest="strict_models",
        action="store_const",
        const=True,
        help="answer 404 model_not_found for models not served",
    )


def simulator_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given as flags (those left out keep their environment or default value)."""
    names = [setting for setting, _, _ in _FLAGS.values()] + ["served_models", "strict_models"]
    return {name: value for name in names if (value := getattr(args, name, None)) is not None}
