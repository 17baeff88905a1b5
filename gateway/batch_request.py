"""Validating the body of `POST /v1/batches` as OpenAI does, naming the offending `param`."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from batch_gateway.errors import InvalidRequest
from batch_gateway.gateway.settings import DEFAULT_ENDPOINTS, IMAGE_AND_VIDEO_ENDPOINTS, BatchLimits
from batch_gateway.json_depth import MAX_JSON_DEPTH, exceeds_depth

_KNOWN_FIELDS = frozenset(
    {"input_file_id", "endpoint", "completion_window", "metadata", "output_expires_after"}
)
_WINDOW = re.compile(r"^([1-9][0-9]*)([hd])$")
_OPENAI_ENDPOINTS = frozenset([*DEFAULT_ENDPOINTS, *IMAGE_AND_VIDEO_ENDPOINTS])


class CreateBatchRequest(msgspec.Struct, frozen=True, kw_only=True):
    input_file_id: str
    endpoint: str
    completion_window: str
    metadata: dict[str, str] | None
    output_expires_after_seconds: int | None


def window_seconds(window: str) -> int:
    match = _WINDOW.match(window)
    if match is None:
        raise ValueError(f"not a completion window: {window!r}")
    return int(match.group(1)) * (3600 if match.group(2) == "h" else 86400)


def parse_create_batch(body: bytes, limits: BatchLimits) -> CreateBatchRequest:
    if exceeds_depth(body):
        raise InvalidRequest(
            f"The JSON body of your request nests deeper than {MAX_JSON_DEPTH} levels."
        )
    try:
        document = msgspec.json.decode(body)
    except msgspec.DecodeError as error:
        raise InvalidRequest(
            "We could not parse the JSON body of your request. (HINT: This likely means you "
            "aren't using your HTTP library correctly.)"
        ) from error
    if not isinstance(document, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    for name in document:
        if name not in _KNOWN_FIELDS:
            raise InvalidRequest(
                f"Unrecognized request argument supplied: {name}",
                param=name,
                code="unknown_parameter",
            )
    endpoint = _required_string(document, "endpoint")
    if endpoint not in limits.endpoints:
        # Code written for OpenAI may meet this where OpenAI would run it: say it is a choice.
        hint = (
            f" {endpoint!r} is an OpenAI batch endpoint this deployment does not enable."
            if endpoint in _OPENAI_ENDPOINTS
            else ""
        )
        raise _invalid("endpoint", endpoint, limits.endpoints, hint)
    window = _required_string(document, "completion_window")
    if window not in limits.completion_windows:
        raise _invalid("completion_window", window, limits.completion_windows)
    return CreateBatchRequest(
        input_file_id=_required_string(document, "input_file_id"),
        endpoint=endpoint,
        completion_window=window,
        metadata=_metadata(document.get("metadata"), limits),
        output_expires_after_seconds=_output_expiry(document.get("output_expires_after"), limits),
    )


def _required_string(document: dict[str, Any], name: str) -> str:
    value = document.get(name)
    if value is None:
        raise InvalidRequest(
            f"Missing required parameter: '{name}'.", param=name, code="missing_required_parameter"
        )
    if not isinstance(value, str) or not value:
        raise InvalidRequest(
            f"Invalid type for '{name}': expected a string.", param=name, code="invalid_type"
        )
    return value


def _invalid(name: str, value: str, allowed: list[str], hint: str = "") -> InvalidRequest:
    supported = ", ".join(map(repr, allowed))
    return InvalidRequest(
        f"Invalid value for '{name}': {value!r}. Supported values are: {supported}.{hint}",
        param=name,
        code="invalid_value",
    )


def _metadata(value: Any, limits: BatchLimits) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidRequest(
            "metadata must be an object of string keys and values.", param="metadata"
        )
    if len(value) > limits.max_metadata_pairs:
        raise InvalidRequest(
            f"metadata may hold at most {limits.max_metadata_pairs} key-value pairs.",
            param="metadata",
            code="invalid_value",
        )
    for key, item in value.items():
        if not isinstance(item, str):
            raise InvalidRequest(
                f"metadata value for {key!r} must be a string.", param=f"metadata.{key}"
            )
        if len(key) > limits.max_metadata_key_length:
            raise InvalidRequest(
                f"metadata keys may be at most {limits.max_metadata_key_length} characters.",
                param="metadata",
                code="invalid_value",
            )
        if len(item) > limits.max_metadata_value_length:
            raise InvalidRequest(
                f"metadata values may be at most {limits.max_metadata_value_length} characters.",
                param=f"metadata.{key}",
                code="invalid_value",
            )
        if "\x00" in key or "\x00" in item:
            # PostgreSQL cannot store a NUL in jsonb: the projector would stop at this batch.
            raise InvalidRequest(
                "metadata keys and values may not contain NUL characters.",
                param="metadata",
                code="invalid_value",
            )
    return dict(value)


def _output_expiry(value: Any, limits: BatchLimits) -> int | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - {"anchor", "seconds"}:
        raise InvalidRequest(
            "output_expires_after must be an object with 'anchor' and 'seconds'.",
            param="output_expires_after",
        )
    if value.get("anchor") != "created_at":
        raise InvalidRequest(
            "output_expires_after.anchor must be 'created_at'.", param="output_expires_after.anchor"
        )
    seconds = value.get("seconds")
    low, high = limits.min_output_expiry_seconds, limits.max_output_expiry_seconds
    if isinstance(seconds, float) and seconds.is_integer():
        seconds = int(seconds)  # 3600.0 is an integer in JSON, as JSON Schema counts
    if isinstance(seconds, bool) or not isinstance(seconds, int) or not low <= seconds <= high:
        raise InvalidRequest(
            f"output_expires_after.seconds must be an integer between {low} and {high}.",
            param="output_expires_after.seconds",
        )
    return seconds
