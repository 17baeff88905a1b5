"""Request bodies as the simulator reads them, and what it derives from them: the model, the
prompt's token count, the output length asked for.

Bodies are decoded straight into Structs that name only the fields the simulator needs
(msgspec skips the rest without building them). Tokens are whitespace-separated words of the
text a request carries, and the length of token-id arrays: cheap, deterministic, and easy for a
test to predict.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

Count = Annotated[int, msgspec.Meta(ge=0)]
Choices = Annotated[int, msgspec.Meta(ge=1, le=128)]


class InvalidBody(Exception):
    """The body cannot be served: 400 with this message and the offending parameter."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class TextPart(msgspec.Struct):
    # Image, audio and file parts have no text; they count for nothing.
    text: str | None = None


class ChatMessage(msgspec.Struct):
    content: str | list[TextPart] | None = None


class ChatRequest(msgspec.Struct):
    model: str
    messages: list[ChatMessage]
    max_tokens: Count | None = None
    max_completion_tokens: Count | None = None
    n: Choices = 1
    stream: bool | None = None


class CompletionRequest(msgspec.Struct):
    model: str
    # A string, a list of strings, a list of token ids, or a list of such lists.
    prompt: str | list[Any]
    max_tokens: Count | None = None
    n: Choices = 1
    stream: bool | None = None


class EmbeddingRequest(msgspec.Struct):
    model: str
    input: str | list[Any]
    encoding_format: str = "float"
    dimensions: Annotated[int, msgspec.Meta(ge=1, le=4096)] | None = None


class ResponsesRequest(msgspec.Struct):
    model: str
    input: str | list[Any] = ""
    instructions: str | None = None
    max_output_tokens: Count | None = None
    stream: bool | None = None


class ModerationRequest(msgspec.Struct):
    input: str | list[Any]
    model: str = "omni-moderation-latest"


class ImageRequest(msgspec.Struct):
    """`/v1/images/generations`; `size`, `quality` and `background` are echoed, resolved."""

    prompt: str
    model: str = "gpt-image-1.5"
    n: Annotated[int, msgspec.Meta(ge=1, le=10)] = 1
    size: str | None = None
    quality: str | None = None
    background: str | None = None
    response_format: str | None = None
    stream: bool | None = None


class ImageRef(msgspec.Struct, forbid_unknown_fields=True):
    """An input image of a JSON image edit: a URL (`https:` or a base64 `data:` URL) or the id
    of an uploaded file."""

    image_url: str | None = None
    file_id: str | None = None


class ImageEditRequest(ImageRequest):
    """`/v1/images/edits` as JSON, the only form a batch line has: OpenAI's `images` (and
    `mask`) as references, or `image` as one URL or a list of them, as some servers take it."""

    images: list[ImageRef] | None = None
    image: str | list[str] | None = None
    mask: ImageRef | None = None


class VideoRequest(msgspec.Struct):
    """`/v1/videos`; a reference image (`input_reference`) is taken and not looked at."""

    prompt: str
    model: str = "sora-2"
    # A string in OpenAI's API ("4", "8", "12"); a number is taken as well.
    seconds: str | Annotated[int, msgspec.Meta(ge=1)] = "4"
    size: str = "720x1280"


def decode(raw: bytes, decoder: msgspec.json.Decoder[Any]) -> Any:
    """Decode a body, turning msgspec's complaints into OpenAI-style 400s."""
    try:
        request = decoder.decode(raw)
    except msgspec.ValidationError as error:
        message = str(error)
        raise InvalidBody(message, _param_of(message)) from None
    except msgspec.DecodeError:
        raise InvalidBody(
            "We could not parse the JSON body of your request. The body must be a JSON object."
        ) from None
    if getattr(request, "stream", None):
        raise InvalidBody("The simulator does not stream; set `stream` to false.", "stream")
    return request


def _param_of(message: str) -> str | None:
    if "missing required field `" in message:
        return message.split("`")[1]
    if " - at `$." in message:
        return message.rsplit(" - at `$.", 1)[1].rstrip("`")
    return None


def chat_prompt_tokens(request: ChatRequest) -> int:
    tokens = 0
    for message in request.messages:
        content = message.content
        if isinstance(content, str):
            tokens += len(content.split())
        elif content is not None:
            tokens += sum(len(part.text.split()) for part in content if part.text)
    return tokens


def prompts(value: str | list[Any], param: str) -> list[str | list[int]]:
    """The separate inputs of a completions prompt or an embeddings input."""
    if isinstance(value, str):
        return [value]
    if not value:
        raise InvalidBody(f"`{param}` must not be empty.", param)
    if all(isinstance(item, int) for item in value):
        return [value]
    items: list[str | list[int]] = []
    for item in value:
        if isinstance(item, str) or (
            isinstance(item, list) and all(isinstance(token, int) for token in item)
        ):
            items.append(item)
        else:
            raise InvalidBody(
                f"`{param}` must be a string, a list of strings or of token arrays.", param
            )
    return items


def prompt_tokens(prompt: str | list[int]) -> int:
    return len(prompt.split()) if isinstance(prompt, str) else len(prompt)


def words_in(value: Any) -> int:
    """Words of every text in a Responses or Moderations input, however it is nested: strings,
    and the `text`, `content` and `output` of its items and parts."""
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, list):
        return sum(words_in(item) for item in value)
    if isinstance(value, dict):
        return sum(words_in(value.get(key)) for key in ("text", "content", "output"))
    return 0
