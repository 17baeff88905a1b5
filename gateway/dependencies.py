"""Names of the values Litestar injects into handlers (declared in `app.py`)."""

from __future__ import annotations

from litestar.di import NamedDependency

from batch_gateway.gateway.services import ApiServices
from batch_gateway.gateway.tenancy import TenantResolver

# The services the lifespan opened.
Services = NamedDependency[ApiServices]
# The caller's tenant, resolved by `tenancy.TenantResolver`.
Tenant = NamedDependency[str]
# Who may call at all: the console's sign-in checks a typed key with it.
Resolver = NamedDependency[TenantResolver]
