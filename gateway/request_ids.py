"""Every response carries `x-request-id`, and every log line of the request names it (and
the batch, on `/v1/batches/{batch_id}...`)."""

from __future__ import annotations

import uuid

from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from batch_gateway.logs import batch_id_var, request_id_var

REQUEST_ID_HEADER = "x-request-id"


def new_request_id() -> str:
    return f"req_{uuid.uuid4().hex}"


class RequestIdMiddleware(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        request_id = new_request_id()
        token = request_id_var.set(request_id)
        # Routing ran before app middleware, so the path's parameters are known here.
        batch_token = batch_id_var.set(scope.get("path_params", {}).get("batch_id"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableScopeHeaders.from_message(message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await next_app(scope, receive, send_with_id)
        finally:
            batch_id_var.reset(batch_token)
            request_id_var.reset(token)


async def ensure_request_id(message: Message, scope: Scope) -> None:
    """A `before_send` hook for the responses the middleware never sees.

    Litestar runs app middleware only once a route matched, so the router's own 404 and 405
    answers would go out without an id; this hook, run for every response, gives them one.
    """
    if message["type"] == "http.response.start":
        headers = MutableScopeHeaders.from_message(message)
        if headers.get(REQUEST_ID_HEADER) is None:
            headers[REQUEST_ID_HEADER] = new_request_id()
