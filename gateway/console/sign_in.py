"""Signing in to the console where the gateway asks for API keys (ADR 0035).

A browser cannot put a bearer key on a link or an EventSource, so the key the caller types is
kept in a cookie the API's tenant resolver reads in place of a missing `Authorization` header:
HttpOnly (no script reads it), SameSite=Strict (no other site's page sends it, so a form
elsewhere cannot cancel a batch in the caller's name), Secure when the page came over HTTPS.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.datastructures import Cookie
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect, Template

from batch_gateway.errors import Unauthenticated
from batch_gateway.gateway.console.rendering import page
from batch_gateway.gateway.dependencies import Resolver
from batch_gateway.gateway.tenancy import CONSOLE_KEY_COOKIE

# A signed-in browser stays signed in this long (the key itself may be revoked sooner).
SESSION_SECONDS = 7 * 24 * 3600


class ConsoleSignIn(Controller):
    path = "/console"
    include_in_schema = False

    @get("/login")
    async def form(
        self, request: Request[Any, Any, Any], tenant_resolver: Resolver
    ) -> Template | Redirect:
        if not tenant_resolver.needs_key:
            return Redirect(path="./", status_code=303)  # the auth proxy in front decides
        return page(request, "login.html", tenant=None)

    @post("/login", status_code=303)
    async def sign_in(
        self,
        request: Request[Any, Any, Any],
        tenant_resolver: Resolver,
        data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Template | Redirect:
        key = data.get("key", "").strip()
        try:
            tenant_resolver.tenant_of_key(key)
        except Unauthenticated as error:
            return page(request, "login.html", tenant=None, status_code=401, message=error.message)
        cookie = Cookie(
            key=CONSOLE_KEY_COOKIE,
            value=key,
            max_age=SESSION_SECONDS,
            path="/",
            httponly=True,
            samesite="strict",
            secure=_over_https(request),
        )
        return Redirect(path="./", status_code=303, cookies=[cookie])

    @post("/logout", status_code=303)
    async def sign_out(self) -> Redirect:
        gone = Cookie(key=CONSOLE_KEY_COOKIE, value="", max_age=0, path="/", httponly=True)
        return Redirect(path="login", status_code=303, cookies=[gone])


def _over_https(request: Request[Any, Any, Any]) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "")
    return request.url.scheme == "https" or forwarded.split(",")[0].strip() == "https"
