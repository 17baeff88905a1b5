"""One place that turns every exception into OpenAI's error envelope and status code."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from litestar.types import ExceptionHandlersMap

from batch_gateway.errors import BatchGatewayError
from batch_gateway.gateway.objects import ErrorBody, ErrorDetail

logger = logging.getLogger(__name__)

# Litestar's own HTTP errors, as OpenAI would type them.
_TYPES_BY_STATUS = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "invalid_request_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_exceeded",
}


def error_response(
    status_code: int,
    message: str,
    *,
    error_type: str,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response[ErrorBody]:
    body = ErrorBody(ErrorDetail(message=message, type=error_type, param=param, code=code))
    return Response(body, status_code=status_code, headers=headers)


def handle_service_error(
    _: Request[Any, Any, Any], error: BatchGatewayError
) -> Response[ErrorBody]:
    headers = {"x-should-retry": "false"} if 400 <= error.status_code < 500 else None
    return error_response(
        error.status_code,
        error.message,
        error_type=error.error_type,
        param=error.param,
        code=error.code,
        headers=headers,
    )


def handle_validation_error(
    request: Request[Any, Any, Any], error: ValidationException
) -> Response[ErrorBody]:
    # Litestar reports each bad parameter as {"key", "message", "source"}: name the first.
    details = error.extra if isinstance(error.extra, list) else []
    first = details[0] if details and isinstance(details[0], dict) else {}
    param = _wire_name(request, first.get("key"))
    message = first.get("message") or error.detail
    text = f"Invalid value for '{param}': {message}" if param else str(message)
    return error_response(400, text, error_type="invalid_request_error", param=param)


def _wire_name(request: Request[Any, Any, Any], key: str | None) -> str | None:
    """A parameter as the client names it (`Last-Event-ID`), not as the handler's argument
    (`last_event_id`), which is how Litestar reports it."""
    parameter = request.route_handler.parsed_fn_signature.parameters.get(key or "")
    definition = parameter.kwarg_definition if parameter is not None else None
    declared = getattr(definition, "name", None) or getattr(definition, "header", None)
    return declared if isinstance(declared, str) else key


def handle_http_error(_: Request[Any, Any, Any], error: HTTPException) -> Response[ErrorBody]:
    status = error.status_code
    return error_response(
        status,
        error.detail,
        error_type=_TYPES_BY_STATUS.get(status, "server_error"),
        headers=dict(error.headers or {}),
    )


def handle_unexpected_error(
    request: Request[Any, Any, Any], error: Exception
) -> Response[ErrorBody]:
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=error)
    return error_response(
        HTTP_500_INTERNAL_SERVER_ERROR,
        "The server had an error while processing your request. Sorry about that!",
        error_type="server_error",
    )


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    BatchGatewayError: handle_service_error,
    ValidationException: handle_validation_error,
    HTTPException: handle_http_error,
    Exception: handle_unexpected_error,
}
