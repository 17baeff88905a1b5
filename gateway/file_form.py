"""Validating the fields of a file upload as OpenAI does: purpose, expiry and filename."""

from __future__ import annotations

import json

import msgspec

from batch_gateway.errors import InvalidRequest
from batch_gateway.gateway.settings import FileLimits
from batch_gateway.gateway.uploads import UploadForm
from batch_gateway.json_depth import exceeds_depth

# What a client may upload with. `batch_output` and the other *_output purposes are only
# ever given by the service to files it writes.
UPLOAD_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")


class UploadRequest(msgspec.Struct, frozen=True, kw_only=True):
    filename: str
    purpose: str
    expires_at: int | None


def parse_upload_fields(form: UploadForm, limits: FileLimits, created_at: int) -> UploadRequest:
    if not form.has_file:
        raise _missing("file")
    purpose = form.fields.get("purpose")
    if purpose is None:
        raise _missing("purpose")
    if purpose not in UPLOAD_PURPOSES:
        raise InvalidRequest(
            f"'{purpose}' is not one of {list(UPLOAD_PURPOSES)} - 'purpose'",
            param="purpose",
            code="invalid_value",
        )
    if purpose == "batch":
        form.check_line_limit()
    seconds = _expiry_seconds(form.fields, limits)
    if seconds is None and purpose == "batch":
        seconds = limits.batch_default_expiry_seconds
    return UploadRequest(
        filename=_clean_filename(form.filename or "", limits.max_filename_length),
        purpose=purpose,
        expires_at=None if seconds is None else created_at + seconds,
    )


def _expiry_seconds(fields: dict[str, str], limits: FileLimits) -> int | None:
    """`expires_after` as the SDK sends it (bracketed form fields) or as a JSON string."""
    anchor = fields.get("expires_after[anchor]")
    seconds = fields.get("expires_after[seconds]")
    if "expires_after" in fields:
        if exceeds_depth(fields["expires_after"].encode()):
            raise InvalidRequest(
                "expires_after must be an object with 'anchor' and 'seconds'.",
                param="expires_after",
            )
        try:
            document = json.loads(fields["expires_after"])
        except json.JSONDecodeError as error:
            raise InvalidRequest(
                "expires_after must be an object with 'anchor' and 'seconds'.",
                param="expires_after",
            ) from error
        if not isinstance(document, dict):
            raise InvalidRequest(
                "expires_after must be an object with 'anchor' and 'seconds'.",
                param="expires_after",
            )
        anchor, seconds = document.get("anchor"), document.get("seconds")
    if anchor is None and seconds is None:
        return None
    if anchor != "created_at":
        raise InvalidRequest(
            "expires_after[anchor] must be 'created_at'.", param="expires_after.anchor"
        )
    try:
        value = int(str(seconds))
    except ValueError:
        value = -1
    if not limits.min_expiry_seconds <= value <= limits.max_expiry_seconds:
        raise InvalidRequest(
            f"expires_after[seconds] must be an integer between {limits.min_expiry_seconds} "
            f"and {limits.max_expiry_seconds}.",
            param="expires_after.seconds",
        )
    return value


def _clean_filename(raw: str, max_length: int) -> str:
    """Keep the last path component only: a filename is metadata, never a path (storage
    keys come from ids), but clients that save downloads under it should not be led astray."""
    name = raw.replace("\\", "/").rsplit("/", 1)[-1].strip()
    if not name or name in (".", ".."):
        raise InvalidRequest("The uploaded file has no usable filename.", param="file")
    if not name.isprintable():
        raise InvalidRequest("The filename contains control characters.", param="file")
    if len(name) > max_length:
        raise InvalidRequest(f"The filename is longer than {max_length} characters.", param="file")
    return name


def _missing(param: str) -> InvalidRequest:
    return InvalidRequest(
        f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter"
    )
