"""How the console's pages are rendered: the Jinja environment (autoescaping everything a
batch or a caller can put on a page), its filters, the headers every page carries, the
relative root every URL on a page starts from, and errors as pages: the API's own status and
message (gateway/errors.py decides both) in HTML, and a caller without a valid key sent to
the sign-in form."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar import Request, Response
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template
from litestar.template import TemplateConfig
from litestar.types import ExceptionHandlersMap

from batch_gateway.errors import Unauthenticated
from batch_gateway.gateway.console.batch_view import NOTHING, duration
from batch_gateway.gateway.errors import EXCEPTION_HANDLERS
from batch_gateway.gateway.objects import ErrorBody
from batch_gateway.gateway.tenancy import CONSOLE_KEY_COOKIE

HERE = Path(__file__).parent
STATIC_DIRECTORY = HERE / "static"

# Scripts only from the console's own files (no inline script, nothing from elsewhere); the
# progress bars set their widths in style attributes, which cannot run code.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    environment = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(when=when, when_short=when_short, duration=duration, rate=rate)
    return TemplateConfig(engine=JinjaTemplateEngine.from_environment(environment))


def relative_root(request: Request[Any, Any, Any]) -> str:
    """`../` once per folder between the page and the server's root, as the browser sees it:
    behind a proxy that strips a path prefix the same walk up lands on the prefix, so no
    page needs to know where it is mounted."""
    depth = browser_path(request).count("/") - 1
    return "../" * depth if depth > 0 else "./"


def browser_path(request: Request[Any, Any, Any]) -> str:
    """The path as sent: Litestar's routing drops a trailing slash from `url.path`, and a
    page's relative links resolve differently with and without it."""
    raw = request.scope.get("raw_path")
    return raw.decode("latin-1").partition("?")[0] if raw else request.url.path


def page(
    request: Request[Any, Any, Any],
    name: str,
    *,
    tenant: str | None,
    status_code: int = 200,
    **context: Any,
) -> Template:
    signed_in = request.cookies.get(CONSOLE_KEY_COOKIE) is not None
    return Template(
        template_name=name,
        context={"root": relative_root(request), "tenant": tenant, "signed_in": signed_in}
        | context,
        status_code=status_code,
        headers=PAGE_HEADERS,
    )


def when(timestamp: int | None) -> str:
    if timestamp is None:
        return NOTHING
    moment = datetime.datetime.fromtimestamp(timestamp, datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def when_short(timestamp: int | None) -> str:
    if timestamp is None:
        return NOTHING
    return datetime.datetime.fromtimestamp(timestamp, datetime.UTC).strftime("%b %d %H:%M")


def rate(requests_per_second: float | None) -> str:
    if requests_per_second is None:
        return NOTHING
    digits = 1 if requests_per_second < 100 else 0
    return f"{requests_per_second:.{digits}f}"


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
