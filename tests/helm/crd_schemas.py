"""Structural checks of the custom resources the chart renders, whose schemas ship with their
operators rather than with kubernetes-validate: the Gateway API's HTTPRoute (v1) and the
Prometheus Operator's ServiceMonitor, PodMonitor and PrometheusRule (monitoring.coreos.com/v1).

These are subsets of the published CRD schemas: the fields this chart uses, with their types
and required keys, and no unknown fields at the levels it writes (a misspelled field fails).
"""

from __future__ import annotations

from typing import Any

# jsonschema comes with kubernetes-validate (the test extra); neither ships type hints.
import jsonschema  # type: ignore[import-untyped]

# The Prometheus Operator's duration format (e.g. 30s, 1h30m).
DURATION = {
    "type": "string",
    "pattern": r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?"
    r"(([0-9]+)s)?(([0-9]+)ms)?)$",
}
STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
NAME = {"type": "string", "minLength": 1, "maxLength": 253}
LABEL_SELECTOR = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"matchLabels": STRING_MAP, "matchExpressions": {"type": "array"}},
}
NAMESPACE_SELECTOR = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"any": {"type": "boolean"}, "matchNames": {"type": "array", "items": NAME}},
}
METADATA = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": NAME,
        "namespace": NAME,
        "labels": STRING_MAP,
        "annotations": STRING_MAP,
    },
}


def _resource(api_version: str, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": api_version},
            "kind": {"const": kind},
            "metadata": METADATA,
            "spec": spec,
        },
    }


def _object(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
        "required": list(required),
    }


# A Prometheus label name (the operator's LabelName).
LABEL_NAME = {"type": "string", "pattern": r"^[a-zA-Z_][a-zA-Z0-9_]*$"}
# The operator's RelabelConfig, as endpoints' `relabelings` take it; an action may be spelled
# in lower case or as here.
RELABEL_ACTIONS = (
    "Replace",
    "Keep",
    "Drop",
    "HashMod",
    "LabelMap",
    "LabelDrop",
    "LabelKeep",
    "Lowercase",
    "Uppercase",
    "KeepEqual",
    "DropEqual",
)
RELABEL_CONFIG = _object(
    {
        "sourceLabels": {"type": "array", "items": LABEL_NAME},
        "separator": {"type": "string"},
        "targetLabel": {"type": "string"},
        "regex": {"type": "string"},
        "modulus": {"type": "integer", "minimum": 0},
        "replacement": {"type": "string"},
        "action": {"enum": [a for action in RELABEL_ACTIONS for a in (action.lower(), action)]},
    }
)


def _scrape_endpoint() -> dict[str, Any]:
    return _object(
        {
            "port": NAME,
            "path": {"type": "string", "pattern": "^/"},
            "interval": DURATION,
            "relabelings": {"type": "array", "items": RELABEL_CONFIG},
        }
    )


HTTP_ROUTE = _resource(
    "gateway.networking.k8s.io/v1",
    "HTTPRoute",
    _object(
        {
            "parentRefs": {
                "type": "array",
                "maxItems": 32,
                "items": _object(
                    {
                        "group": {"type": "string"},
                        "kind": {"type": "string"},
                        "namespace": NAME,
                        "name": NAME,
                        "sectionName": NAME,
                        "port": {"type": "integer"},
                    },
                    ("name",),
                ),
            },
            "hostnames": {"type": "array", "maxItems": 16, "items": NAME},
            "rules": {
                "type": "array",
                "maxItems": 16,
                "items": _object(
                    {
                        "matches": {
                            "type": "array",
                            "maxItems": 64,
                            "items": _object(
                                {
                                    "path": _object(
                                        {
                                            "type": {
                                                "enum": ["Exact", "PathPrefix", "RegularExpression"]
                                            },
                                            "value": {"type": "string", "pattern": "^/"},
                                        }
                                    )
                                }
                            ),
                        },
                        "filters": {
                            "type": "array",
                            "maxItems": 16,
                            "items": _object(
                                {
                                    "type": {
                                        "enum": [
                                            "RequestHeaderModifier",
                                            "ResponseHeaderModifier",
                                            "RequestMirror",
                                            "RequestRedirect",
                                            "URLRewrite",
                                            "ExtensionRef",
                                        ]
                                    },
                                    "urlRewrite": _object(
                                        {
                                            "hostname": NAME,
                                            "path": _object(
                                                {
                                                    "type": {
                                                        "enum": [
                                                            "ReplaceFullPath",
                                                            "ReplacePrefixMatch",
                                                        ]
                                                    },
                                                    "replaceFullPath": {"type": "string"},
                                                    "replacePrefixMatch": {
                                                        "type": "string",
                                                        "pattern": "^/",
                                                    },
                                                },
                                                ("type",),
                                            ),
                                        }
                                    ),
                                },
                                ("type",),
                            ),
                        },
                        "backendRefs": {
                            "type": "array",
                            "items": _object(
                                {
                                    "name": NAME,
                                    "namespace": NAME,
                                    "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                                    "weight": {"type": "integer"},
                                },
                                ("name",),
                            ),
                        },
                    }
                ),
            },
        }
    ),
)

SERVICE_MONITOR = _resource(
    "monitoring.coreos.com/v1",
    "ServiceMonitor",
    _object(
        {
            "endpoints": {"type": "array", "items": _scrape_endpoint()},
            "selector": LABEL_SELECTOR,
            "namespaceSelector": NAMESPACE_SELECTOR,
        },
        ("selector",),
    ),
)

POD_MONITOR = _resource(
    "monitoring.coreos.com/v1",
    "PodMonitor",
    _object(
        {
            "podMetricsEndpoints": {"type": "array", "items": _scrape_endpoint()},
            "selector": LABEL_SELECTOR,
            "namespaceSelector": NAMESPACE_SELECTOR,
        },
        ("selector",),
    ),
)

PROMETHEUS_RULE = _resource(
    "monitoring.coreos.com/v1",
    "PrometheusRule",
    _object(
        {
            "groups": {
                "type": "array",
                "items": _object(
                    {
                        "name": {"type": "string", "minLength": 1},
                        "interval": DURATION,
                        "rules": {
                            "type": "array",
                            "items": _object(
                                {
                                    "alert": {"type": "string", "minLength": 1},
                                    "expr": {"type": "string", "minLength": 1},
                                    "for": DURATION,
                                    "labels": STRING_MAP,
                                    "annotations": STRING_MAP,
                                },
                                ("alert", "expr"),
                            ),
                        },
                    },
                    ("name", "rules"),
                ),
            }
        },
        ("groups",),
    ),
)

CUSTOM_RESOURCE_SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): HTTP_ROUTE,
    ("monitoring.coreos.com/v1", "ServiceMonitor"): SERVICE_MONITOR,
    ("monitoring.coreos.com/v1", "PodMonitor"): POD_MONITOR,
    ("monitoring.coreos.com/v1", "PrometheusRule"): PROMETHEUS_RULE,
}


def validate_custom_resource(manifest: dict[str, Any]) -> None:
    """Raise `jsonschema.ValidationError` unless `manifest` fits its kind's schema."""
    schema = CUSTOM_RESOURCE_SCHEMAS[(manifest["apiVersion"], manifest["kind"])]
    jsonschema.validate(manifest, schema)
