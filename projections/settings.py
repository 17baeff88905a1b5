"""The projector's settings."""

from __future__ import annotations

from typing import Annotated

import msgspec

from batch_gateway.settings import CommonSettings, Port


class ProjectorSettings(CommonSettings, frozen=True, kw_only=True, forbid_unknown_fields=True):
    host: str = "127.0.0.1"
    # /health, /ready and /metrics.
    port: Port = 9101
    batch_size: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 500
