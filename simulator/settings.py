"""What the simulator does: its address, latency, capacity, injected faults, and per-model
behaviour. Loaded like every component's settings (`BATCH_GATEWAY_*`, optional YAML)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from batch_gateway.settings import SettingsError

Rate = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
NonNegative = Annotated[float, msgspec.Meta(ge=0.0)]
Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
Slots = Annotated[int, msgspec.Meta(ge=1)]
Tokens = Annotated[int, msgspec.Meta(ge=0)]

# The fault kinds, in the order their rates are stacked on one uniform draw (see faults.py).
# New kinds go last: a seeded run keeps drawing the same faults for the older ones.
FAULT_KINDS = ("429", "500", "503", "timeout", "disconnect", "dropped")


class ModelBehaviour(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Overrides for one model; a field left unset takes the server-wide value."""

    latency_seconds: NonNegative | None = None
    latency_per_output_token_seconds: NonNegative | None = None
    jitter: Rate | None = None
    # A model with its own capacity is served from its own slots, as if by its own vLLM
    # instance; without one it shares the server-wide slots.
    capacity: Slots | None = None
    max_output_tokens: Tokens | None = None
    rate_429: Rate | None = None
    rate_500: Rate | None = None
    rate_503: Rate | None = None
    rate_timeout: Rate | None = None
    rate_disconnect: Rate | None = None
    rate_dropped: Rate | None = None


class SimulatorSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    host: str = "127.0.0.1"
    # 0 picks a free port (tests); `running_simulator(...).url` says which.
    port: Port = 8100
    log_level: str = "INFO"
    # Time to answer one request: fixed + per output token, scaled by a uniform factor in
    # [1 - jitter, 1 + jitter].
    latency_seconds: NonNegative = 0.0
    latency_per_output_token_seconds: NonNegative = 0.0
    jitter: Rate = 0.0
    # Requests served at once; the rest wait in FIFO order, as in a real server's queue.
    capacity: Slots = 256
    # A shared server (ADR 0010): prefill time per prompt token not found in the prefix cache,
    # decoding slowed by load (per-token time x (1 + load_slowdown x running / capacity)), and
    # a prefix cache of this many prompt prefixes (0: none).
    latency_per_prompt_token_seconds: NonNegative = 0.0
    load_slowdown: NonNegative = 0.0
    prefix_cache_size: Annotated[int, msgspec.Meta(ge=0)] = 0
    # Injected faults, each a probability per request; together at most 1.
    rate_429: Rate = 0.0
    rate_500: Rate = 0.0
    rate_503: Rate = 0.0
    # A timed-out request is held `timeout_seconds` (or until the client gives up), then 504.
    rate_timeout: Rate = 0.0
    # A disconnected request has its connection dropped without any response.
    rate_disconnect: Rate = 0.0
    # A dropped request is shed as llm-d's router does: 429 with
    # `x-llm-d-request-dropped-reason`.
    rate_dropped: Rate = 0.0
    timeout_seconds: NonNegative = 30.0
    retry_after_seconds: Annotated[int, msgspec.Meta(ge=0)] = 1
    # Makes injected faults and jitter reproducible (see faults.py for how).
    seed: int | None = None
    # Output length when the request names none (`max_tokens` and its siblings).
    max_output_tokens: Tokens = 16
    models: dict[str, ModelBehaviour] = msgspec.field(default_factory=dict)
    # Listed by /v1/models (with the keys of `models`); with `strict_models`, any other model
    # gets 404 `model_not_found`, otherwise it is served with the server-wide behaviour.
    served_models: list[str] = msgspec.field(default_factory=lambda: ["sim-model"])
    strict_models: bool = False
    # How long in-flight requests may take to finish once the server is asked to stop.
    shutdown_grace_seconds: NonNegative = 5.0

    def __post_init__(self) -> None:
        _check_rates("BATCH_GATEWAY_RATE_*", _rates(self))
        for name, model in self.models.items():
            rates = tuple(
                self_rate if model_rate is None else model_rate
                for self_rate, model_rate in zip(_rates(self), _rates(model), strict=True)
            )
            _check_rates(f"BATCH_GATEWAY_MODELS[{name}].rate_*", rates)

    def model_names(self) -> list[str]:
        """Every model the simulator advertises, in a stable order without duplicates."""
        return list(dict.fromkeys([*self.served_models, *self.models]))


class Behaviour(msgspec.Struct, frozen=True, kw_only=True):
    """The effective behaviour for one model: the server-wide values with its overrides."""

    latency_seconds: float
    latency_per_output_token_seconds: float
    latency_per_prompt_token_seconds: float
    load_slowdown: float
    jitter: float
    max_output_tokens: int
    # Cumulative thresholds of FAULT_KINDS on a uniform draw in [0, 1).
    fault_thresholds: tuple[float, ...]


def behaviour_for(settings: SimulatorSettings, model: ModelBehaviour | None) -> Behaviour:
    def pick(name: str) -> float:
        value = getattr(model, name, None) if model is not None else None
        return float(getattr(settings, name) if value is None else value)

    rates = [pick(f"rate_{kind}") for kind in FAULT_KINDS]
    thresholds: list[float] = []
    total = 0.0
    for rate in rates:
        total += rate
        thresholds.append(total)
    return Behaviour(
        latency_seconds=pick("latency_seconds"),
        latency_per_output_token_seconds=pick("latency_per_output_token_seconds"),
        latency_per_prompt_token_seconds=settings.latency_per_prompt_token_seconds,
        load_slowdown=settings.load_slowdown,
        jitter=pick("jitter"),
        max_output_tokens=int(pick("max_output_tokens")),
        fault_thresholds=tuple(thresholds),
    )


def _rates(source: SimulatorSettings | ModelBehaviour) -> tuple[float | None, ...]:
    return tuple(getattr(source, f"rate_{kind}") for kind in FAULT_KINDS)


def _check_rates(name: str, rates: tuple[float | None, ...]) -> None:
    total = sum(rate or 0.0 for rate in rates)
    if total > 1.0 + 1e-9:
        raise SettingsError(f"{name}: the fault rates add up to {total:g}, more than 1")
