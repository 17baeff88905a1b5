"""Upcasters: functions that lift an old event document to the next schema version.

The log is append-only and never rewritten, so an entry written years ago under schema
version 1 of an event must still decode once that event is at version 3. Each upcaster
takes the `data` fields of version N and returns those of version N + 1; `upcast` chains
them. Registering one is the only step a breaking schema change needs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Fields = dict[str, Any]
Upcaster = Callable[[Fields], Fields]
# (event type, version it upgrades from) -> upcaster.
Upcasters = Mapping[tuple[str, int], Upcaster]

# The registry decoding uses. Empty while every event is at v1.
UPCASTERS: Upcasters = {}


class MissingUpcaster(ValueError):
    """No upcaster lifts this event type from this version."""


def upcast(
    type_name: str,
    version: int,
    fields: Fields,
    target: int,
    upcasters: Upcasters = UPCASTERS,
) -> Fields:
    """Lift the `data` fields of `type_name` from `version` up to `target`."""
    while version < target:
        step = upcasters.get((type_name, version))
        if step is None:
            raise MissingUpcaster(f"no upcaster for {type_name} v{version}")
        fields = step(fields)
        version += 1
    return fields
