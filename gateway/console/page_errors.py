"""Errors on the console's pages, as pages: the API's own status and message (gateway/errors.py
decides both), in HTML; and a caller without a valid key goes to the sign-in form."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.response import Redirect
from litestar.types import ExceptionHandlersMap

from batch_gateway.errors import Unauthenticated
from batch_gateway.gateway.console.rendering import page, relative_root
from batch_gateway.gateway.errors import EXCEPTION_HANDLERS
from batch_gateway.gateway.objects import ErrorBody

_TITLES = {400: "Bad request", 404: "Not found", 409: "Conflict", 503: "Unavailable"}


def handle_page_error(request: Request[Any, Any, Any], error: Exception) -> Response[Any]:
    if isinstance(error, Unauthenticated):
        return Redirect(path=relative_root(request) + "console/login", status_code=303)
    as_api = _api_handler(error)(request, error)
    body = as_api.content
    message = body.error.message if isinstance(body, ErrorBody) else "Something went wrong."
    status = as_api.status_code
    return page(
        request,
        "error.html",
        tenant=None,
        status_code=status,
        title=_TITLES.get(status, "Error" if status < 500 else "Server error"),
        message=message,
    )


def _api_handler(error: Exception) -> Any:
    for kind in type(error).__mro__:
        if kind in EXCEPTION_HANDLERS:
            return EXCEPTION_HANDLERS[kind]
    return EXCEPTION_HANDLERS[Exception]


# Litestar picks the handler of the nearest class in an exception's MRO across all layers, so
# every class the API's map names is taken over here, not just `Exception`.
PAGE_EXCEPTION_HANDLERS: ExceptionHandlersMap = dict.fromkeys(EXCEPTION_HANDLERS, handle_page_error)
