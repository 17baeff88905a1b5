"""Typed settings of every component, read from environment variables and an optional YAML file.

Each field `name` of a settings Struct is read from `BATCH_GATEWAY_<NAME>`; a nested Struct
field `storage` reads its own fields from `BATCH_GATEWAY_STORAGE_<NAME>`. `BATCH_GATEWAY_CONFIG`
may name a YAML file with the same keys in lower case (nested as mappings); the environment
wins over the file. Every value is validated at start, and an error names the offending key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import msgspec
import yaml

from batch_gateway.event_loop import EventLoop
from batch_gateway.events.keys import Partitions, StreamKeys
from batch_gateway.secret_store import InvalidSecretsKey, load_secrets_key
from batch_gateway.storage import StorageSettings

ENV_PREFIX = "BATCH_GATEWAY_"
CONFIG_FILE_VARIABLE = "BATCH_GATEWAY_CONFIG"

Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
Seconds = Annotated[float, msgspec.Meta(gt=0)]


class CommonSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What every component needs to join the same stack."""

    redis_url: str = "redis://127.0.0.1:6379/0"
    postgres_url: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    # Projections live in this PostgreSQL schema; another schema is another, independent copy.
    postgres_schema: Annotated[str, msgspec.Meta(pattern=r"^[a-z_][a-z0-9_]{0,47}$")] = (
        "batch_gateway"
    )
    # Every Redis key starts with this (inside a hash tag, see events/keys.py). No braces: a
    # prefix starting with "}" would empty the hash tag and scatter the keys over cluster slots.
    key_prefix: Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[^{}]+$")] = (
        "batch-gateway"
    )
    storage: StorageSettings = msgspec.field(default_factory=StorageSettings)
    log_level: str = "INFO"
    # Encrypts captured pass-through headers at rest: 32 random bytes, URL-safe base64
    # (`python -c "import base64,os;print(base64.urlsafe_b64encode(os.urandom(32)).decode())"`).
    secrets_key: str = ""
    # How long the events of an ended file or batch stay in Redis before only the archive in
    # object storage holds them (ADR 0028). Reads, downloads and event replays work either way.
    event_retention_seconds: Annotated[float, msgspec.Meta(ge=0)] = 604_800.0
    # Partitions of the global stream, each on its own hash tag, so that the log spreads over a
    # Redis Cluster's shards (ADR 0029). Fixed for a log's life: every component the same.
    event_partitions: Partitions = 1
    # uvloop where it is installed (ADR 0031); "asyncio" for the standard library's loop.
    event_loop: EventLoop = "auto"

    def stream_keys(self) -> StreamKeys:
        return StreamKeys(self.key_prefix, self.event_partitions)


class FileLimits(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """OpenAI's limits by default; operators may raise or lower them."""

    max_bytes: Annotated[int, msgspec.Meta(gt=0)] = 200 * 1024 * 1024
    max_batch_lines: Annotated[int, msgspec.Meta(gt=0)] = 50_000
    min_expiry_seconds: Annotated[int, msgspec.Meta(gt=0)] = 3600
    max_expiry_seconds: Annotated[int, msgspec.Meta(gt=0)] = 2_592_000
    # Batch input files expire after 30 days unless the upload says otherwise, as at OpenAI.
    batch_default_expiry_seconds: Annotated[int, msgspec.Meta(gt=0)] = 2_592_000
    max_filename_length: Annotated[int, msgspec.Meta(gt=0)] = 512
    # An upload that sends nothing for this long is dropped, and nothing of it is kept: a
    # client trickling bytes (or gone without closing) must not hold a connection forever.
    upload_idle_timeout_seconds: Annotated[float, msgspec.Meta(gt=0)] = 60.0


DEFAULT_ENDPOINTS = [
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/embeddings",
    "/v1/responses",
    "/v1/moderations",
]
CompletionWindow = Annotated[str, msgspec.Meta(pattern=r"^[1-9][0-9]*[hd]$")]


class BatchLimits(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a batch may ask for; OpenAI's rules by default."""

    # Operators may add more endpoints their servers speak, e.g. /v1/rerank or /v1/classify.
    endpoints: list[str] = msgspec.field(default_factory=lambda: list(DEFAULT_ENDPOINTS))
    completion_windows: list[CompletionWindow] = msgspec.field(default_factory=lambda: ["24h"])
    max_metadata_pairs: Annotated[int, msgspec.Meta(ge=0)] = 16
    max_metadata_key_length: Annotated[int, msgspec.Meta(gt=0)] = 64
    max_metadata_value_length: Annotated[int, msgspec.Meta(gt=0)] = 512
    min_output_expiry_seconds: Annotated[int, msgspec.Meta(gt=0)] = 3600
    max_output_expiry_seconds: Annotated[int, msgspec.Meta(gt=0)] = 2_592_000
    # Request headers captured at create time and forwarded with every downstream request.
    pass_through_headers: list[str] = msgspec.field(default_factory=lambda: ["Authorization"])
    idempotency_ttl_seconds: Annotated[int, msgspec.Meta(gt=0)] = 86_400


class EventStreamSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`GET /v1/batches/{id}/events`, the Server-Sent Events of one batch (ADR 0013)."""

    # A comment line goes out after this long without an event, so proxies keep the stream.
    keep_alive_seconds: Seconds = 15.0
    # How long the server's one reader of the global stream blocks in each XREAD; keep it
    # below the Redis client's socket timeout (5 s by default).
    block_seconds: Seconds = 2.0
    # A stream ends after this long (0: never); clients resume with Last-Event-ID.
    max_stream_seconds: Annotated[float, msgspec.Meta(ge=0)] = 0.0
    # Streams one API server serves at once; more are refused with 503.
    max_subscribers: Annotated[int, msgspec.Meta(ge=1)] = 10_000
    # Replay reads (XRANGE) in flight at once across streams: bounds Redis connections.
    max_concurrent_reads: Annotated[int, msgspec.Meta(ge=1)] = 16
    # Live events held for a client that reads slower than they come; past this it re-reads.
    buffered_events: Annotated[int, msgspec.Meta(ge=1)] = 1000


class ApiServerSettings(CommonSettings, frozen=True, kw_only=True, forbid_unknown_fields=True):
    host: str = "127.0.0.1"
    port: Port = 8000
    # The trusted header the auth proxy in front sets to the caller's identity (llm-d's name).
    tenant_header: str = "X-MaaS-Username"
    # Standalone use: bearer API key -> tenant. When non-empty, every call needs a known key.
    api_keys: dict[str, str] = msgspec.field(default_factory=dict)
    # How long a command waits for its own event to reach the projections (read-your-writes).
    projection_wait_seconds: Seconds = 5.0
    files: FileLimits = msgspec.field(default_factory=FileLimits)
    batches: BatchLimits = msgspec.field(default_factory=BatchLimits)
    event_stream: EventStreamSettings = msgspec.field(default_factory=EventStreamSettings)


class ProjectorSettings(CommonSettings, frozen=True, kw_only=True, forbid_unknown_fields=True):
    host: str = "127.0.0.1"
    # /health, /ready and /metrics.
    port: Port = 9101
    batch_size: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 500


class GatewaySettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An OpenAI-compatible inference endpoint (llm-d's router, vLLM, ...), as llm-d's batch
    gateway configures `globalInferenceGateway` and each of `modelGateways`."""

    # Base URL without the /v1 path, e.g. http://infra-inference-gateway.llm-d.svc:80.
    url: str = ""
    # Sent as `Authorization: Bearer ...` unless the batch passes its own Authorization through.
    api_key: str = ""
    tls_verify: bool = True
    ca_file: str = ""
    max_concurrency: Annotated[int, msgspec.Meta(ge=1)] = 64
    # Concurrency adapts between these (AIMD on 429/5xx and saturation; ADR 0012).
    min_concurrency: Annotated[int, msgspec.Meta(ge=1)] = 1
    request_timeout_seconds: Seconds = 600.0
    # Admission (ADR 0030): the server's load, read from its Prometheus endpoint (vLLM's
    # /metrics) or from a Prometheus server that sees the whole llm-d pool (one query per
    # signal), closes the gate for batch traffic while a signal is over its threshold.
    metrics_url: str = ""
    prometheus_url: str = ""
    prometheus_waiting_query: str = "sum(vllm:num_requests_waiting)"
    prometheus_running_query: str = "sum(vllm:num_requests_running)"
    prometheus_kv_cache_query: str = "avg(vllm:kv_cache_usage_perc)"
    saturation_waiting_threshold: Annotated[int, msgspec.Meta(ge=0)] = 8
    # Requests running on the server (batch and interactive) above which batch traffic waits;
    # 0: not used. Set it to the server's slots minus what interactive peaks need.
    max_running: Annotated[int, msgspec.Meta(ge=0)] = 0
    max_kv_cache_usage: Annotated[float, msgspec.Meta(gt=0, le=1)] = 1.0
    metrics_poll_seconds: Seconds = 0.5
    # Metrics unreadable this long close the gate (fail closed).
    metrics_grace_seconds: Annotated[float, msgspec.Meta(ge=0)] = 3.0
    # Hints for llm-d's router (Gateway API Inference Extension): the objective batch requests
    # are sent under (e.g. a sheddable batch objective; "" sends none), the tenant as the
    # fairness id, and the time left until the batch's deadline as `x-slo-ttft-ms`.
    inference_objective: str = ""
    router_hints: bool = True


class ProcessorSettings(CommonSettings, frozen=True, kw_only=True, forbid_unknown_fields=True):
    host: str = "127.0.0.1"
    # /health, /ready and /metrics.
    port: Port = 9102
    # Identifies this processor in consumer groups and claim events; default: host name + pid.
    name: str = ""
    # What this processor does: validate new batches, execute queued jobs, or both (they
    # scale differently: validation is CPU, execution waits on inference servers); and
    # deliver webhooks, which does nothing while `webhook_urls` is empty (ADR 0015).
    roles: list[Literal["validate", "execute", "webhooks"]] = msgspec.field(
        default_factory=lambda: ["validate", "execute", "webhooks"]
    )
    max_requests_per_batch: Annotated[int, msgspec.Meta(gt=0)] = 50_000
    # At most this many line errors are reported for a rejected input file.
    max_validation_errors: Annotated[int, msgspec.Meta(gt=0)] = 100
    # A longer input line is a line error, refused while it streams in: validating and sending a
    # line holds up to about three copies of it (ADR 0025). Room for a request with images.
    max_line_bytes: Annotated[int, msgspec.Meta(gt=0)] = 16 * 1024 * 1024
    # Whether one input file may mix models (each is planned and dispatched separately).
    allow_multiple_models: bool = True
    # A pending entry idle this long belongs to a processor presumed dead and is reclaimed.
    lease_seconds: Seconds = 30.0
    # Where requests go: one gateway for every model, and/or one per model (which wins).
    global_inference_gateway: GatewaySettings = msgspec.field(default_factory=GatewaySettings)
    model_gateways: dict[str, GatewaySettings] = msgspec.field(default_factory=dict)
    # A batch is cut into slices of this many requests, which processors claim, run and
    # resume independently (ADR 0030): recorded per batch when it is validated.
    slice_size: Annotated[int, msgspec.Meta(ge=1)] = 500
    # Slices one processor runs at once, and at most how many of them of one batch: the rest
    # of a batch's slices go to other processors, and room is left for other batches.
    max_concurrent_jobs: Annotated[int, msgspec.Meta(ge=1)] = 8
    max_slices_per_batch: Annotated[int, msgspec.Meta(ge=1)] = 2
    # Requests one job (slice) holds in flight or awaiting their commit.
    max_in_flight: Annotated[int, msgspec.Meta(ge=1)] = 512
    # A job sends requests sharing a prompt prefix together (the server's prefix cache hits),
    # ordering buffers of this many bytes of request bodies; 0 sends them in file order.
    prefix_order_bytes: Annotated[int, msgspec.Meta(ge=0)] = 8 * 1024 * 1024
    # Relative shares of the inference gateways' capacity per tenant (default 1 each); a
    # tenant's share is split equally between its running batches (ADR 0030).
    tenant_weights: dict[str, Annotated[float, msgspec.Meta(gt=0)]] = msgspec.field(
        default_factory=dict
    )
    # Results are committed about once per interval (one progress event a second per job);
    # a chunk is committed early only when it holds this many lines, to bound memory.
    chunk_size: Annotated[int, msgspec.Meta(ge=1)] = 10_000
    commit_interval_seconds: Seconds = 1.0
    # Retries of 429, 5xx and connection errors: attempts in all, exponential backoff with jitter.
    max_attempts: Annotated[int, msgspec.Meta(ge=1)] = 5
    backoff_initial_seconds: Seconds = 0.5
    backoff_max_seconds: Seconds = 30.0
    # After a cancel or the end of the completion window, in-flight requests get this long.
    cancel_grace_seconds: Annotated[float, msgspec.Meta(ge=0)] = 5.0
    # On SIGTERM, running jobs get this long to finish; then they stop, and what they
    # committed is resumed by another processor once their lease runs out.
    shutdown_grace_seconds: Annotated[float, msgspec.Meta(ge=0)] = 20.0
    # Output and error files live this long unless the batch asked otherwise (OpenAI: 30 days).
    output_expiry_seconds: Annotated[int, msgspec.Meta(gt=0)] = 2_592_000
    # Webhooks (ADR 0015): these URLs receive batch.completed, .failed, .expired and
    # .cancelled, signed per Standard Webhooks with `webhook_secret` ("whsec_" + base64 key),
    # each tried up to `webhook_max_attempts` times with exponential backoff and jitter.
    webhook_urls: list[str] = msgspec.field(default_factory=list)
    webhook_secret: str = ""
    webhook_max_attempts: Annotated[int, msgspec.Meta(ge=1)] = 8
    webhook_timeout_seconds: Seconds = 10.0
    webhook_backoff_initial_seconds: Seconds = 1.0
    webhook_backoff_max_seconds: Seconds = 60.0


class GcSettings(CommonSettings, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The garbage collector (ADR 0014)."""

    host: str = "127.0.0.1"
    # /health, /ready and /metrics.
    port: Port = 9103
    # Due expiries are acted on within this long (sooner when the log wakes the gc up).
    sweep_interval_seconds: Seconds = 10.0
    # How often storage is listed for orphans, and how old an orphan must be to be removed
    # (an upload writes its bytes before its event; a chunk is written before its commit).
    orphan_sweep_interval_seconds: Seconds = 3600.0
    orphan_grace_seconds: Annotated[float, msgspec.Meta(ge=0)] = 3600.0
    # Log what would be done; change nothing.
    dry_run: bool = False
    # One gc acts at a time; another takes over when the holder's lease runs out.
    leader_lease_seconds: Seconds = 30.0
    # Lifetime of the error file of a batch the gc expires (the processors' setting, shared).
    output_expiry_seconds: Annotated[int, msgspec.Meta(gt=0)] = 2_592_000


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the key."""


S = TypeVar("S", bound=msgspec.Struct)


def load_settings(
    cls: type[S], environ: Mapping[str, str], overrides: Mapping[str, Any] | None = None
) -> S:
    """Build `cls` from a YAML file (if named), then the environment, then `overrides`."""
    values: dict[str, Any] = {}
    config_file = environ.get(CONFIG_FILE_VARIABLE)
    if config_file:
        values = _read_config_file(Path(config_file))
    _merge(values, _from_environment(cls, environ, ENV_PREFIX))
    _merge(values, dict(overrides or {}))
    return _convert(cls, values, ENV_PREFIX)


def settings_for(cls: type[S], source: CommonSettings, **overrides: Any) -> S:
    """Settings of another component that joins the same stack as `source`."""
    values: dict[str, Any] = {
        field.name: getattr(source, field.name) for field in msgspec.structs.fields(CommonSettings)
    }
    return cls(**values, **overrides)


def to_environment(settings: msgspec.Struct, prefix: str = ENV_PREFIX) -> dict[str, str]:
    """The inverse of `load_settings`: environment variables that reproduce `settings`."""
    result: dict[str, str] = {}
    for field in msgspec.structs.fields(settings):
        value = getattr(settings, field.name)
        name = prefix + field.name.upper()
        if isinstance(value, msgspec.Struct):
            result.update(to_environment(value, name + "_"))
        elif isinstance(value, str):
            result[name] = value
        else:
            result[name] = msgspec.json.encode(value).decode()
    return result


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise SettingsError(f"{CONFIG_FILE_VARIABLE}: cannot read {path}: {error}") from error
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise SettingsError(f"{CONFIG_FILE_VARIABLE}: {path} must hold a mapping of settings")
    return loaded


def _from_environment(
    cls: type[msgspec.Struct], environ: Mapping[str, str], prefix: str
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for field in msgspec.structs.fields(cls):
        name = prefix + field.name.upper()
        if isinstance(field.type, type) and issubclass(field.type, msgspec.Struct):
            nested = _from_environment(field.type, environ, name + "_")
            if nested:
                values[field.name] = nested
        elif name in environ:
            values[field.name] = _parse_value(name, environ[name], field.type)
    return values


def _parse_value(name: str, raw: str, annotation: Any) -> Any:
    # Scalars are converted by msgspec from their text; mappings and lists arrive as JSON.
    if isinstance(annotation, type) and annotation in (str, int, float, bool):
        return raw
    if raw.strip()[:1] in ("{", "["):
        try:
            return json.loads(raw)
        except json.JSONDecodeError as error:
            raise SettingsError(f"{name}: not valid JSON: {error}") from error
    return raw


def _merge(into: dict[str, Any], values: Mapping[str, Any]) -> None:
    for key, value in values.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def _convert(cls: type[S], values: dict[str, Any], prefix: str) -> S:
    fields = {field.name: field for field in msgspec.structs.fields(cls)}
    for key in values:
        if key not in fields:
            raise SettingsError(f"{prefix}{key.upper()}: unknown setting")
    converted: dict[str, Any] = {}
    for key, value in values.items():
        field = fields[key]
        name = prefix + key.upper()
        if isinstance(field.type, type) and issubclass(field.type, msgspec.Struct):
            if not isinstance(value, dict):
                raise SettingsError(f"{name}: expected a mapping of settings")
            converted[key] = _convert(field.type, value, name + "_")
            continue
        try:
            converted[key] = msgspec.convert(value, field.type, strict=False)
        except msgspec.ValidationError as error:
            raise SettingsError(f"{name}: {error}") from error
    return cls(**converted)


def require_secrets_key(settings: CommonSettings) -> None:
    """Fail at start, naming the variable, rather than at the first batch with headers."""
    try:
        load_secrets_key(settings.secrets_key)
    except InvalidSecretsKey as error:
        raise SettingsError(
            f"{ENV_PREFIX}SECRETS_KEY: {error}; it encrypts captured pass-through headers. "
            'Generate one with: python3 -c "import base64,os;'
            'print(base64.urlsafe_b64encode(os.urandom(32)).decode())"'
        ) from error


def require_webhook_secret(settings: ProcessorSettings) -> None:
    """With webhook URLs, the signing secret must be valid: fail at start, naming the key."""
    if not settings.webhook_urls:
        return
    # Imported here: the settings module must not depend on the processors package at import.
    from batch_gateway.processors.webhooks.signing import InvalidWebhookSecret, signing_key

    try:
        signing_key(settings.webhook_secret)
    except InvalidWebhookSecret as error:
        raise SettingsError(f"{ENV_PREFIX}WEBHOOK_SECRET: {error}") from error
