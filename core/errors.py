"""The error tree shared by every component.

Adapters translate driver exceptions (redis, psycopg, minio) into these once, at their
boundary; the gateway maps them to OpenAI's error envelope in one handler.
"""

from __future__ import annotations


class BatchGatewayError(Exception):
    """Base of every error the service raises on purpose.

    `param` and `code` follow OpenAI's error object; `status_code` is the HTTP status the
    gateway answers with.
    """

    status_code = 500
    error_type = "server_error"
    default_code: str | None = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code if code is not None else self.default_code


class InvalidRequest(BatchGatewayError):
    status_code = 400
    error_type = "invalid_request_error"


class Unauthenticated(BatchGatewayError):
    status_code = 401
    error_type = "invalid_request_error"
    default_code = "invalid_api_key"


class NotFound(BatchGatewayError):
    status_code = 404
    error_type = "invalid_request_error"


class Conflict(BatchGatewayError):
    status_code = 409
    error_type = "invalid_request_error"


class PayloadTooLarge(BatchGatewayError):
    status_code = 413
    error_type = "invalid_request_error"


class RequestTimeout(BatchGatewayError):
    """The client stopped sending its request body part-way."""

    status_code = 408
    error_type = "invalid_request_error"
    default_code = "request_timeout"


class Unavailable(BatchGatewayError):
    """A backing service (Redis, PostgreSQL, storage) does not answer; worth a retry."""

    status_code = 503
    error_type = "server_error"
    default_code = "service_unavailable"
