"""The OpenAPI document (`/openapi`) as the API really behaves: bodies, statuses, error shape.

Litestar derives most of the document from the handlers, but three things it cannot see: the
request bodies (the handlers read their bodies themselves, streamed and judged by OpenAI's
rules, so no `data` parameter describes them), the errors each route answers (raised deep in
commands and queries), and their shape (OpenAI's envelope, not Litestar's default one). Each
route therefore names its error statuses with `error_responses`, and `document_request_bodies`
adds the bodies, with the limits of this server's settings, once the app is built.
"""

from __future__ import annotations

from litestar.openapi import ResponseSpec
from litestar.openapi.spec import (
    OpenAPI,
    OpenAPIFormat,
    OpenAPIMediaType,
    OpenAPIType,
    Operation,
    Parameter,
    RequestBody,
    Schema,
)

from batch_gateway.gateway.file_form import UPLOAD_PURPOSES
from batch_gateway.gateway.objects import ErrorBody
from batch_gateway.gateway.settings import ApiServerSettings

_DESCRIPTIONS = {
    400: "Invalid request: the message names the problem and `param` the offending parameter.",
    401: "Missing or unknown API key (only where the server is configured with API keys).",
    404: "No such object for this caller's tenant (another tenant's objects are not found).",
    408: "The upload sent nothing for longer than the server's idle timeout; nothing was kept.",
    409: "The object's state does not allow this (e.g. cancelling an ended batch), or an "
    "`Idempotency-Key` was reused for a different request.",
    413: "The body is over this server's limits (refused while it streams).",
    500: "An unexpected error on the server's side.",
    503: "A backing service (Redis, PostgreSQL, storage) does not answer; retry shortly.",
}
# PostgreSQL cannot keep a NUL in text, so metadata refuses it (gateway/batch_request.py).
_NO_NUL = "^[^\\x00]*$"
# Every route: a bad tenant header or parameter, an API key, the unexpected, an outage.
_ALWAYS = (400, 401, 500, 503)


def error_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAI-shaped error responses for the statuses a route answers, besides `_ALWAYS`."""
    return {
        status: ResponseSpec(
            data_container=ErrorBody, description=_DESCRIPTIONS[status], generate_examples=False
        )
        for status in sorted({*_ALWAYS, *statuses})
    }


def document_optional_parameters(document: OpenAPI) -> None:
    """An optional query or header parameter is left out, never sent as `null`: Litestar
    documents `str | None` as "a string or null", which a client can only send as the text
    "null". Keep the string schema, with its pattern."""
    for item in (document.paths or {}).values():
        for operation in (item.get, item.post, item.delete):
            for parameter in (operation.parameters if operation else None) or []:
                if not isinstance(parameter, Parameter):
                    continue
                schema = parameter.schema
                if not isinstance(schema, Schema) or not schema.one_of:
                    continue
                kept = [s for s in schema.one_of if getattr(s, "type", None) != OpenAPIType.NULL]
                if len(kept) == 1 and isinstance(kept[0], Schema):
                    kept[0].pattern = kept[0].pattern or schema.pattern
                    parameter.schema = kept[0]


def document_request_bodies(document: OpenAPI, settings: ApiServerSettings) -> None:
    """Add the request bodies of the upload and of the batch create to `document`."""
    bodies = {
        ("/v1/files", "post"): RequestBody(
            required=True,
            description="The file and its purpose, as a multipart form.",
            content={"multipart/form-data": OpenAPIMediaType(schema=_upload_form(settings))},
        ),
        ("/v1/batches", "post"): RequestBody(
            required=True,
            description="The batch to create from an uploaded `batch` file.",
            content={"application/json": OpenAPIMediaType(schema=_create_batch(settings))},
        ),
    }
    paths = document.paths or {}
    for (path, method), body in bodies.items():
        operation: Operation | None = getattr(paths[path], method)
        assert operation is not None, f"{method.upper()} {path} is not served"
        operation.request_body = body


def _upload_form(settings: ApiServerSettings) -> Schema:
    files = settings.files
    return Schema(
        type=OpenAPIType.OBJECT,
        required=["file", "purpose"],
        # The SDK sends both bracketed fields of `expires_after`, or neither.
        dependent_required={
            "expires_after[anchor]": ["expires_after[seconds]"],
            "expires_after[seconds]": ["expires_after[anchor]"],
        },
        properties={
            "file": Schema(
                type=OpenAPIType.STRING,
                format=OpenAPIFormat.BINARY,
                description=f"At most {files.max_bytes} bytes; a `batch` file at most "
                f"{files.max_batch_lines} lines.",
            ),
            "purpose": Schema(type=OpenAPIType.STRING, enum=list(UPLOAD_PURPOSES)),
            "expires_after[anchor]": Schema(type=OpenAPIType.STRING, enum=["created_at"]),
            "expires_after[seconds]": Schema(
                type=OpenAPIType.INTEGER,
                minimum=files.min_expiry_seconds,
                maximum=files.max_expiry_seconds,
            ),
        },
    )


def _create_batch(settings: ApiServerSettings) -> Schema:
    limits = settings.batches
    text = OpenAPIType.STRING
    return Schema(
        type=OpenAPIType.OBJECT,
        required=["input_file_id", "endpoint", "completion_window"],
        additional_properties=False,
        properties={
            "input_file_id": Schema(
                type=text, min_length=1, description="The id of a `batch` file."
            ),
            "endpoint": Schema(type=text, enum=list(limits.endpoints)),
            "completion_window": Schema(type=text, enum=list(limits.completion_windows)),
            "metadata": Schema(
                one_of=[
                    Schema(
                        type=OpenAPIType.OBJECT,
                        max_properties=limits.max_metadata_pairs,
                        property_names=Schema(
                            type=text,
                            max_length=limits.max_metadata_key_length,
                            pattern=_NO_NUL,
                        ),
                        additional_properties=Schema(
                            type=text,
                            max_length=limits.max_metadata_value_length,
                            pattern=_NO_NUL,
                        ),
                    ),
                    Schema(type=OpenAPIType.NULL),
                ]
            ),
            "output_expires_after": Schema(
                one_of=[
                    Schema(
                        type=OpenAPIType.OBJECT,
                        required=["anchor", "seconds"],
                        additional_properties=False,
                        properties={
                            "anchor": Schema(type=text, enum=["created_at"]),
                            "seconds": Schema(
                                type=OpenAPIType.INTEGER,
                                minimum=limits.min_output_expiry_seconds,
                                maximum=limits.max_output_expiry_seconds,
                            ),
                        },
                    ),
                    Schema(type=OpenAPIType.NULL),
                ]
            ),
        },
    )
