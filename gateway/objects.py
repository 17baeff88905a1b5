"""API objects shaped exactly like OpenAI's, serialised by Litestar through msgspec."""

from __future__ import annotations

from typing import Literal

import msgspec

from batch_gateway.projections.file_queries import FileRecord


class FileObject(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=False):
    id: str
    object: Literal["file"] = "file"
    bytes: int
    created_at: int
    filename: str
    purpose: str
    # Bytes are stored before the upload is acknowledged, so a file is never "uploaded"
    # without being usable: the SDK's wait_for_processing() returns at once.
    status: Literal["uploaded", "processed", "error"] = "processed"
    expires_at: int | None = None
    status_details: str | None = None

    @classmethod
    def from_record(cls, record: FileRecord) -> FileObject:
        return cls(
            id=record.id,
            bytes=record.bytes,
            created_at=record.created_at,
            filename=record.filename,
            purpose=record.purpose,
            expires_at=record.expires_at,
        )


class FileList(msgspec.Struct, frozen=True, kw_only=True):
    object: Literal["list"] = "list"
    data: list[FileObject]
    first_id: str | None
    last_id: str | None
    has_more: bool


class DeletedFile(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    object: Literal["file"] = "file"
    deleted: bool = True


class ErrorDetail(msgspec.Struct, frozen=True, kw_only=True):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorBody(msgspec.Struct, frozen=True):
    error: ErrorDetail
