"""The leaves of values.schema.json under each component's `config`: the settings the chart
lets users set, as dotted paths (`processor.config.globalInferenceGateway.url`)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from tests.helm.chart import CHART_DIR
from tests.helm.manifests import COMPONENTS


def chart_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((CHART_DIR / "values.schema.json").read_text())
    return schema


def config_leaves(
    values: Mapping[str, Any] | None = None, *, with_values: bool = False
) -> Iterator[str]:
    """Dotted paths of the schema's config leaves or, `with_values`, of those set in `values`."""
    schema = chart_schema()
    for component in COMPONENTS:
        config_schema = schema["properties"][component]["properties"]["config"]
        prefix = f"{component}.config"
        if with_values:
            yield from _value_leaves((values or {}).get(component, {}).get("config", {}), prefix)
        else:
            yield from _schema_leaves(config_schema, prefix)


def _schema_leaves(schema: Mapping[str, Any], prefix: str) -> Iterator[str]:
    properties = schema.get("properties")
    if properties is None or schema.get("type") != "object":
        # A map of arbitrary names (modelGateways) is a leaf: its entries are not settings.
        yield prefix
        return
    for name, child in properties.items():
        yield from _schema_leaves(child, f"{prefix}.{name}")


# Maps of arbitrary names (models, tenants): a value there is one setting, not a group of them.
NAMED_MAPS = (".modelGateways", ".tenantWeights")


def _value_leaves(values: Mapping[str, Any], prefix: str) -> Iterator[str]:
    for name, value in values.items():
        path = f"{prefix}.{name}"
        if isinstance(value, Mapping) and not path.endswith(NAMED_MAPS):
            yield from _value_leaves(value, path)
        else:
            yield path


def schema_node(dotted: str) -> dict[str, Any]:
    """The schema of the value at a dotted path (`processor.config.leaseSeconds`)."""
    node = chart_schema()
    for name in dotted.split("."):
        node = node["properties"][name]
    return node
