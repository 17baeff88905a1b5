"""How the console's pages are rendered: the Jinja environment (autoescaping everything a
batch or a caller can put on a page), its filters, the headers every page carries, and the
relative root every URL on a page starts from."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar import Request
from litestar.datastructures import ResponseHeader
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Template
from litestar.template import TemplateConfig

from batch_gateway.gateway.console.batch_view import NOTHING, duration
from batch_gateway.gateway.tenancy import CONSOLE_KEY_COOKIE

HERE = Path(__file__).parent
STATIC_DIRECTORY = HERE / "static"

# Scripts only from the console's own files (no inline script, nothing from elsewhere); the
# progress bars set their widths in style attributes, which cannot run code.
PAGE_HEADERS = [
    ResponseHeader(
        name="Content-Security-Policy",
        value=(
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
        ),
    ),
    ResponseHeader(name="X-Content-Type-Options", value="nosniff"),
    ResponseHeader(name="Referrer-Policy", value="same-origin"),
    ResponseHeader(name="Cache-Control", value="no-store"),
]


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
        headers={header.name: header.value or "" for header in PAGE_HEADERS},
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
