"""The processors' settings: the inference gateways requests go to, how jobs are cut, run,
retried and committed, and webhooks."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from batch_gateway.settings import ENV_PREFIX, CommonSettings, Port, Seconds, SettingsError


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
