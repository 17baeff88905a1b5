"""A reverse proxy that serves a server under a path prefix, as an HTTPRoute with a
`ReplacePrefixMatch` rewrite (or an ingress) does: `/<prefix>/x` is forwarded as `/x`, and
bodies stream both ways (uploads in, Server-Sent Events out) without being buffered.

It is also the auth proxy in front of the gateway, as llm-d's is: it knows the caller by a
session cookie (`USER_COOKIE`) and sets the trusted tenant header from it, replacing whatever
the client sent. A browser's own downloads carry its cookies, but no header a test driver
adds, so the tenant must come from a cookie, as it does behind a real proxy.
"""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web

from tests.harness.loop_thread import LoopThread

START_TIMEOUT_SECONDS = 10.0
USER_COOKIE = "proxy_user"
# Hop-by-hop headers (RFC 9110, 7.6.1) end at the proxy; aiohttp sets its own framing.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)


class PrefixProxy(LoopThread):
    def __init__(self, upstream: str, prefix: str, tenant_header: str) -> None:
        super().__init__("prefix proxy", START_TIMEOUT_SECONDS)
        self._upstream = upstream.rstrip("/")
        self._prefix = "/" + prefix.strip("/")
        self._tenant_header = tenant_header.lower()
        self._port = 0

    @property
    def url(self) -> str:
        """The prefix's URL, with a trailing slash."""
        return f"http://127.0.0.1:{self._port}{self._prefix}/"

    async def _serve(self, stop: asyncio.Event) -> None:
        app = web.Application(client_max_size=0)
        app.router.add_route("*", self._prefix + "/{tail:.*}", self._forward)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        async with aiohttp.ClientSession(auto_decompress=False) as session:
            self._session = session
            self._ready()
            await stop.wait()
            await runner.cleanup()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        target = self._upstream + "/" + request.match_info["tail"]
        if request.query_string:
            target += "?" + request.query_string
        dropped = _HOP_BY_HOP | {self._tenant_header}
        headers = {k: v for k, v in request.headers.items() if k.lower() not in dropped}
        if user := request.cookies.get(USER_COOKIE):
            headers[self._tenant_header] = user
        async with self._session.request(
            request.method,
            target,
            headers=headers,
            data=request.content if request.body_exists else None,
            allow_redirects=False,
        ) as upstream:
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for name, value in upstream.headers.items():
                if name.lower() not in _HOP_BY_HOP:
                    response.headers.add(name, value)
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response
