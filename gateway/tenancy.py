"""Who is calling: the tenant every query, key and file is scoped to.

Behind llm-d's gateway an auth proxy authenticates the caller and sets a trusted header
(`X-MaaS-Username` by default); its last value wins, since proxies append. Standalone, an
API-key map turns `Authorization: Bearer <key>` into a tenant instead, and an unknown or
missing key is a 401. A browser cannot put a key in the headers of a link or an EventSource:
the console's sign-in keeps it in an HttpOnly, SameSite=Strict cookie instead, which stands
in for a missing `Authorization` header (ADR 0035).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from litestar import Request

from batch_gateway.errors import InvalidRequest, Unauthenticated

DEFAULT_TENANT = "default"
MAX_TENANT_LENGTH = 256
CONSOLE_KEY_COOKIE = "batch_gateway_key"


class TenantResolver:
    def __init__(self, header: str, api_keys: Mapping[str, str]) -> None:
        self._header = header.lower()
        self._api_keys = dict(api_keys)

    def __call__(self, request: Request[Any, Any, Any]) -> str:
        if self._api_keys:
            authorization = request.headers.get("authorization")
            if authorization is None and (key := request.cookies.get(CONSOLE_KEY_COOKIE)):
                authorization = f"Bearer {key}"
            return self._from_api_key(authorization)
        values = request.headers.getall(self._header, [])
        # The last occurrence decides, even when empty: skipping it would hand the decision
        # back to a value the client may have sent itself ahead of the proxy's.
        tenant = values[-1].strip() if values else ""
        if not tenant:
            return DEFAULT_TENANT
        if len(tenant) > MAX_TENANT_LENGTH or not tenant.isprintable():
            raise InvalidRequest(f"The {self._header} header is not a valid tenant name.")
        return tenant

    @property
    def needs_key(self) -> bool:
        return bool(self._api_keys)

    def _from_api_key(self, authorization: str | None) -> str:
        scheme, _, key = (authorization or "").partition(" ")
        if scheme.lower() != "bearer":
            key = ""
        return self.tenant_of_key(key)

    def tenant_of_key(self, key: str) -> str:
        if not key.strip():
            raise Unauthenticated(
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
            )
        tenant = self._api_keys.get(key.strip())
        if tenant is None:
            raise Unauthenticated(f"Incorrect API key provided: {_redact(key.strip())}.")
        return tenant


def _redact(key: str) -> str:
    return key[:3] + "*" * max(0, len(key) - 7) + key[-4:] if len(key) > 8 else "****"
