"""Typed settings of every component, read from environment variables and an optional YAML file.

Each field `name` of a settings Struct is read from `BATCH_GATEWAY_<NAME>`; a nested Struct
field `storage` reads its own fields from `BATCH_GATEWAY_STORAGE_<NAME>`. `BATCH_GATEWAY_CONFIG`
may name a YAML file with the same keys in lower case (nested as mappings); the environment
wins over the file. Every value is validated at start, and an error names the offending key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar

import msgspec
import yaml

from batch_gateway.event_loop import EventLoop
from batch_gateway.events.keys import Partitions, StreamKeys
from batch_gateway.secret_store import InvalidSecretsKey, load_secrets_key
from batch_gateway.storage import StorageSettings

ENV_PREFIX = "BATCH_GATEWAY_"
CONFIG_FILE_VARIABLE = "BATCH_GATEWAY_CONFIG"

Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
Seconds = Annotated[float, msgspec.Meta(gt=0)]


class CommonSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What every component needs to join the same stack."""

    redis_url: str = "redis://127.0.0.1:6379/0"
    postgres_url: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    # Projections live in this PostgreSQL schema; another schema is another, independent copy.
    postgres_schema: Annotated[str, msgspec.Meta(pattern=r"^[a-z_][a-z0-9_]{0,47}$")] = (
        "batch_gateway"
    )
    # Every Redis key starts with this (inside a hash tag, see events/keys.py). No braces: a
    # prefix starting with "}" would empty the hash tag and scatter the keys over cluster slots.
    key_prefix: Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[^{}]+$")] = (
        "batch-gateway"
    )
    storage: StorageSettings = msgspec.field(default_factory=StorageSettings)
    log_level: str = "INFO"
    # Encrypts captured pass-through headers at rest: 32 random bytes, URL-safe base64
    # (`python -c "import base64,os;print(base64.urlsafe_b64encode(os.urandom(32)).decode())"`).
    secrets_key: str = ""
    # How long the events of an ended file or batch stay in Redis before only the archive in
    # object storage holds them (ADR 0028). Reads, downloads and event replays work either way.
    event_retention_seconds: Annotated[float, msgspec.Meta(ge=0)] = 604_800.0
    # Partitions of the global stream, each on its own hash tag, so that the log spreads over a
    # Redis Cluster's shards (ADR 0029). Fixed for a log's life: every component the same.
    event_partitions: Partitions = 1
    # uvloop where it is installed (ADR 0031); "asyncio" for the standard library's loop.
    event_loop: EventLoop = "auto"

    def stream_keys(self) -> StreamKeys:
        return StreamKeys(self.key_prefix, self.event_partitions)


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the key."""


S = TypeVar("S", bound=msgspec.Struct)


def load_settings(
    cls: type[S], environ: Mapping[str, str], overrides: Mapping[str, Any] | None = None
) -> S:
    """Build `cls` from a YAML file (if named), then the environment, then `overrides`."""
    values: dict[str, Any] = {}
    config_file = environ.get(CONFIG_FILE_VARIABLE)
    if config_file:
        values = _read_config_file(Path(config_file))
    _merge(values, _from_environment(cls, environ, ENV_PREFIX))
    _merge(values, dict(overrides or {}))
    return _convert(cls, values, ENV_PREFIX)


def settings_for(cls: type[S], source: CommonSettings, **overrides: Any) -> S:
    """Settings of another component that joins the same stack as `source`."""
    values: dict[str, Any] = {
        field.name: getattr(source, field.name) for field in msgspec.structs.fields(CommonSettings)
    }
    return cls(**values, **overrides)


def to_environment(settings: msgspec.Struct, prefix: str = ENV_PREFIX) -> dict[str, str]:
    """The inverse of `load_settings`: environment variables that reproduce `settings`."""
    result: dict[str, str] = {}
    for field in msgspec.structs.fields(settings):
        value = getattr(settings, field.name)
        name = prefix + field.name.upper()
        if isinstance(value, msgspec.Struct):
            result.update(to_environment(value, name + "_"))
        elif isinstance(value, str):
            result[name] = value
        else:
            result[name] = msgspec.json.encode(value).decode()
    return result


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise SettingsError(f"{CONFIG_FILE_VARIABLE}: cannot read {path}: {error}") from error
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise SettingsError(f"{CONFIG_FILE_VARIABLE}: {path} must hold a mapping of settings")
    return loaded


def _from_environment(
    cls: type[msgspec.Struct], environ: Mapping[str, str], prefix: str
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for field in msgspec.structs.fields(cls):
        name = prefix + field.name.upper()
        if isinstance(field.type, type) and issubclass(field.type, msgspec.Struct):
            nested = _from_environment(field.type, environ, name + "_")
            if nested:
                values[field.name] = nested
        elif name in environ:
            values[field.name] = _parse_value(name, environ[name], field.type)
    return values


def _parse_value(name: str, raw: str, annotation: Any) -> Any:
    # Scalars are converted by msgspec from their text; mappings and lists arrive as JSON.
    if isinstance(annotation, type) and annotation in (str, int, float, bool):
        return raw
    if raw.strip()[:1] in ("{", "["):
        try:
            return json.loads(raw)
        except json.JSONDecodeError as error:
            raise SettingsError(f"{name}: not valid JSON: {error}") from error
    return raw


def _merge(into: dict[str, Any], values: Mapping[str, Any]) -> None:
    for key, value in values.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def _convert(cls: type[S], values: dict[str, Any], prefix: str) -> S:
    fields = {field.name: field for field in msgspec.structs.fields(cls)}
    for key in values:
        if key not in fields:
            raise SettingsError(f"{prefix}{key.upper()}: unknown setting")
    converted: dict[str, Any] = {}
    for key, value in values.items():
        field = fields[key]
        name = prefix + key.upper()
        if isinstance(field.type, type) and issubclass(field.type, msgspec.Struct):
            if not isinstance(value, dict):
                raise SettingsError(f"{name}: expected a mapping of settings")
            converted[key] = _convert(field.type, value, name + "_")
            continue
        try:
            converted[key] = msgspec.convert(value, field.type, strict=False)
        except msgspec.ValidationError as error:
            raise SettingsError(f"{name}: {error}") from error
    return cls(**converted)


def require_secrets_key(settings: CommonSettings) -> None:
    """Fail at start, naming the variable, rather than at the first batch with headers."""
    try:
        load_secrets_key(settings.secrets_key)
    except InvalidSecretsKey as error:
        raise SettingsError(
            f"{ENV_PREFIX}SECRETS_KEY: {error}; it encrypts captured pass-through headers. "
            'Generate one with: python3 -c "import base64,os;'
            'print(base64.urlsafe_b64encode(os.urandom(32)).decode())"'
        ) from error
