"""Hand-built `multipart/form-data` bodies, for what the SDK and httpx never send: fields in
any order, raw filenames (NUL, CR/LF, backslashes unescaped) and broken framing."""

from __future__ import annotations

from collections.abc import Iterable

BOUNDARY = "batch-gateway-test-boundary"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def field_part(name: str, value: str) -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        + value.encode()
        + b"\r\n"
    )


def file_part(content: bytes, filename: str = "input.jsonl", name: str = "file") -> bytes:
    """A file part; `filename` goes into the header byte for byte, unescaped."""
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; '
        f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
        + content
        + b"\r\n"
    )


def form_body(parts: Iterable[bytes]) -> bytes:
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()
