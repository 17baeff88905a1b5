"""Load a component's settings the way its container will: the rendered settings file at the
path BATCH_GATEWAY_CONFIG names, plus the rendered environment with Secret values filled in,
through the project's own `load_settings`."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from batch_gateway.settings import load_settings
from tests.helm.chart import Manifest
from tests.helm.manifests import (
    CONFIG_DIR,
    SETTINGS_CLASSES,
    container,
    deployments,
    of_kind,
    settings_config_map,
)

# What the user's Secret (global.secretName) holds in these tests: recognisable values, so a
# test can tell they never reach a ConfigMap.
USER_SECRET = {
    "redis-url": "redis://:redis-password-7f3a@redis.example:6379/0",
    "postgresql-url": "postgresql://batch:pg-password-91c2@postgres.example:5432/batch",
    "s3-secret-access-key": "s3-secret-5d0e",
    "inference-api-key": "sk-inference-88b1",
    "webhook-secret": "whsec_" + base64.b64encode(b"webhook-signing-key-of-32-bytes!").decode(),
    "api-keys": '{"sk-team-a": "team-a"}',
}


def chart_secrets(
    manifests: Sequence[Manifest], user_secret_name: str
) -> dict[str, dict[str, str]]:
    """Every Secret the pods may read: the user's, and those the chart renders."""
    secrets = {user_secret_name: dict(USER_SECRET)}
    for secret in of_kind(manifests, "Secret"):
        data = {k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()}
        secrets[secret["metadata"]["name"]] = data | dict(secret.get("stringData", {}))
    return secrets


def container_environment(
    deployment: Manifest, secrets: Mapping[str, Mapping[str, str]], config_dir: Path
) -> dict[str, str]:
    """The container's environment, Secret references resolved as the kubelet would."""
    environment: dict[str, str] = {}
    for variable in container(deployment).get("env", []):
        if "value" in variable:
            environment[variable["name"]] = variable["value"].replace(CONFIG_DIR, str(config_dir))
            continue
        source = variable["valueFrom"]
        if "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            value = secrets.get(ref["name"], {}).get(ref["key"])
            if value is None:
                assert ref.get("optional"), f"{variable['name']}: no key {ref['key']}"
                continue
            environment[variable["name"]] = value
    return environment


def load_component_settings(
    manifests: Sequence[Manifest], component: str, directory: Path, user_secret_name: str
) -> Any:
    """`component`'s settings object, as its container would load them."""
    deployment = deployments(manifests)[component]
    mounts = {m["name"]: m for m in container(deployment)["volumeMounts"]}
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    config_volume = volumes[next(n for n, m in mounts.items() if m["mountPath"] == CONFIG_DIR)]
    config_map = settings_config_map(manifests)
    assert config_volume["configMap"]["name"] == config_map["metadata"]["name"]
    config_dir = directory / component
    config_dir.mkdir(parents=True, exist_ok=True)
    for item in config_volume["configMap"]["items"]:
        (config_dir / item["path"]).write_text(config_map["data"][item["key"]])
    environment = container_environment(
        deployment, chart_secrets(manifests, user_secret_name), config_dir
    )
    return load_settings(SETTINGS_CLASSES[component], environment)
