"""Response bodies shaped exactly like OpenAI's (fields in OpenAI's order), as Structs so that
msgspec encodes them without building dicts first."""

from __future__ import annotations

from typing import Any, Literal

import msgspec


class Body(msgspec.Struct):
    """Base of every body the simulator sends."""


class PromptTokensDetails(Body, kw_only=True):
    cached_tokens: int = 0


class CompletionTokensDetails(Body, kw_only=True):
    reasoning_tokens: int = 0


class ChatUsage(Body, kw_only=True):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails = msgspec.field(default_factory=PromptTokensDetails)
    completion_tokens_details: CompletionTokensDetails = msgspec.field(
        default_factory=CompletionTokensDetails
    )


class AssistantMessage(Body, kw_only=True):
    role: Literal["assistant"] = "assistant"
    content: str
    refusal: None = None
    annotations: list[Any] = msgspec.field(default_factory=list)


class ChatChoice(Body, kw_only=True):
    index: int
    message: AssistantMessage
    logprobs: None = None
    finish_reason: str


class ChatCompletion(Body, kw_only=True):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: ChatUsage
    service_tier: str = "default"
    system_fingerprint: None = None


class CompletionChoice(Body, kw_only=True):
    text: str
    index: int
    logprobs: None = None
    finish_reason: str


class CompletionUsage(Body, kw_only=True):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class Completion(Body, kw_only=True):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: CompletionUsage
    system_fingerprint: None = None


class Embedding(Body, kw_only=True):
    object: Literal["embedding"] = "embedding"
    index: int
    # Floats, or their little-endian float32 bytes in base64 (`encoding_format: "base64"`).
    embedding: list[float] | str


class EmbeddingUsage(Body, kw_only=True):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(Body, kw_only=True):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage


class OutputText(Body, kw_only=True):
    type: Literal["output_text"] = "output_text"
    text: str
    annotations: list[Any] = msgspec.field(default_factory=list)
    logprobs: list[Any] = msgspec.field(default_factory=list)


class OutputMessage(Body, kw_only=True):
    type: Literal["message"] = "message"
    id: str
    status: Literal["completed", "incomplete"]
    role: Literal["assistant"] = "assistant"
    content: list[OutputText]


class InputTokensDetails(Body, kw_only=True):
    cache_write_tokens: int = 0
    cached_tokens: int = 0


class OutputTokensDetails(Body, kw_only=True):
    reasoning_tokens: int = 0


class ResponseUsage(Body, kw_only=True):
    input_tokens: int
    input_tokens_details: InputTokensDetails = msgspec.field(default_factory=InputTokensDetails)
    output_tokens: int
    output_tokens_details: OutputTokensDetails = msgspec.field(default_factory=OutputTokensDetails)
    total_tokens: int


class IncompleteDetails(Body, kw_only=True):
    reason: Literal["max_output_tokens"] = "max_output_tokens"


class Response(Body, kw_only=True):
    id: str
    object: Literal["response"] = "response"
    created_at: int
    status: Literal["completed", "incomplete"]
    error: None = None
    incomplete_details: IncompleteDetails | None = None
    instructions: str | None = None
    max_output_tokens: int | None = None
    model: str
    output: list[OutputMessage]
    parallel_tool_calls: bool = True
    previous_response_id: None = None
    reasoning: dict[str, Any] = msgspec.field(
        default_factory=lambda: {"effort": None, "summary": None}
    )
    store: bool = False
    temperature: float = 1.0
    text: dict[str, Any] = msgspec.field(default_factory=lambda: {"format": {"type": "text"}})
    tool_choice: str = "auto"
    tools: list[Any] = msgspec.field(default_factory=list)
    top_p: float = 1.0
    truncation: str = "disabled"
    usage: ResponseUsage
    user: None = None
    metadata: dict[str, str] = msgspec.field(default_factory=dict)


class ModerationResult(Body, kw_only=True):
    flagged: bool = False
    categories: dict[str, bool]
    category_scores: dict[str, float]
    category_applied_input_types: dict[str, list[str]]


class Moderation(Body, kw_only=True):
    id: str
    model: str
    results: list[ModerationResult]


class ImageData(Body, kw_only=True, omit_defaults=True):
    """One image: base64 PNG bytes (GPT image models) or a URL (`response_format: "url"`)."""

    b64_json: str | None = None
    url: str | None = None


class ImageTokensDetails(Body, kw_only=True):
    image_tokens: int
    text_tokens: int


class ImageUsage(Body, kw_only=True):
    input_tokens: int
    input_tokens_details: ImageTokensDetails
    output_tokens: int
    output_tokens_details: ImageTokensDetails
    total_tokens: int


class ImagesResponse(Body, kw_only=True):
    created: int
    background: Literal["transparent", "opaque"]
    data: list[ImageData]
    output_format: Literal["png"] = "png"
    quality: Literal["low", "medium", "high", "xhigh", "max"]
    size: str
    usage: ImageUsage


class Video(Body, kw_only=True):
    """A video job, as `POST /v1/videos` answers; the simulator's are done at once."""

    id: str
    object: Literal["video"] = "video"
    model: str
    status: Literal["queued", "in_progress", "completed", "failed"]
    progress: int
    created_at: int
    completed_at: int | None
    expires_at: int | None
    prompt: str
    seconds: str
    size: str
    remixed_from_video_id: None = None
    error: None = None


class Model(Body, kw_only=True):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "batch-gateway-simulator"


class ModelList(Body, kw_only=True):
    object: Literal["list"] = "list"
    data: list[Model]


class ErrorDetail(Body, kw_only=True):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class Error(Body, kw_only=True):
    error: ErrorDetail
