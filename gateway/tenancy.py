"""Who is calling: the tenant every query, key and file is scoped to.

Behind llm-d's gateway an auth proxy authenticates the caller and sets a trusted header
(`X-MaaS-Username` by default); its last value wins, since proxies append. Standalone, an
API-key map turns `Authorization: Bearer <key>` into a tenant instead, and an unknown or
missing key is a 401.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from litestar import Request

from batch_gateway.errors import InvalidRequest, Unauthenticated

DEFAULT_TENANT = "default"
MAX_TENANT_LENGTH = 256


class TenantResolver:
    def __init__(self, header: str, api_keys: Mapping[str, str]) -> None:
        self._header = header.lower()
        self._api_keys = dict(api_keys)

    def __call__(self, request: Request[Any, Any, Any]) -> str:
        if self._api_keys:
            return self._from_api_key(request.headers.get("authorization"))
        values = request.headers.getall(self._header, [])
        # The last occurrence decides, even when empty: skipping it would hand the decision
        # back to a value the client may have sent itself ahead of the proxy's.
        tenant = values[-1].strip() if values else ""
        if not tenant:
            return DEFAULT_TENANT
        if len(tenant) > MAX_TENANT_LENGTH or not tenant.isprintable():
            raise InvalidRequest(f"The {self._header} header is not a valid tenant name.")
        return tenant

    def _from_api_key(self, authorization: str | None) -> str:
        scheme, _, key = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
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
