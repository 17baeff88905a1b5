"""The garbage collector's settings."""

from __future__ import annotations

from typing import Annotated

import msgspec

from batch_gateway.settings import CommonSettings, Port, Seconds


class GcSettings(CommonSettings, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The garbage collector (ADR 0014)."""

    host: str = "127.0.0.1"
    # /health, /ready and /metrics.
    port: Port = 9103
    # Due expiries are acted on within this long (sooner when the log wakes the gc up).
    sweep_interval_seconds: Seconds = 10.0
    # How often storage is listed for orphans, and how old an orphan must be to be removed
    # (an upload writes its bytes before its event; a chunk is written before its commit).
    orphan_sweep_interval_seconds: Seconds = 3600.0
    orphan_grace_seconds: Annotated[float, msgspec.Meta(ge=0)] = 3600.0
    # Log what would be done; change nothing.
    dry_run: bool = False
    # One gc acts at a time; another takes over when the holder's lease runs out.
    leader_lease_seconds: Seconds = 30.0
    # Lifetime of the error file of a batch the gc expires (the processors' setting, shared).
    output_expiry_seconds: Annotated[int, msgspec.Meta(gt=0)] = 2_592_000
