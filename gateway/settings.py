"""The API server's settings: what it listens on, who its callers are, and what files and
batches it accepts (read as every component's settings are: batch_gateway.settings)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from batch_gateway.settings import CommonSettings, Port, Seconds


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


# What vLLM serves, and so what a batch may use unless the operator says otherwise.
DEFAULT_ENDPOINTS = [
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/embeddings",
    "/v1/responses",
    "/v1/moderations",
]
# OpenAI's batch endpoints for image and video models (ADR 0033): accepted only once an operator
# adds them to `endpoints`, for a deployment whose inference servers generate images or videos.
IMAGE_AND_VIDEO_ENDPOINTS = ["/v1/images/generations", "/v1/images/edits", "/v1/videos"]
# A path joined onto an inference gateway's URL: a leading slash, no query, no whitespace.
EndpointPath = Annotated[str, msgspec.Meta(pattern=r"^/[^\s?#]+$")]
CompletionWindow = Annotated[str, msgspec.Meta(pattern=r"^[1-9][0-9]*[hd]$")]


class BatchLimits(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a batch may ask for; OpenAI's rules by default."""

    # Operators may add more endpoints their servers speak, e.g. /v1/rerank, /v1/classify or
    # IMAGE_AND_VIDEO_ENDPOINTS.
    endpoints: list[EndpointPath] = msgspec.field(default_factory=lambda: list(DEFAULT_ENDPOINTS))
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
    # The web console at /console (ADR 0035), under the same authentication and tenancy.
    console: bool = True
    # How long a command waits for its own event to reach the projections (read-your-writes).
    projection_wait_seconds: Seconds = 5.0
    files: FileLimits = msgspec.field(default_factory=FileLimits)
    batches: BatchLimits = msgspec.field(default_factory=BatchLimits)
    event_stream: EventStreamSettings = msgspec.field(default_factory=EventStreamSettings)
