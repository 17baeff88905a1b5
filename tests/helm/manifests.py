"""Finding things in rendered manifests: the chart tests' shared vocabulary."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import yaml

from batch_gateway.gateway.settings import ApiServerSettings
from batch_gateway.gc.settings import GcSettings
from batch_gateway.processors.settings import ProcessorSettings
from batch_gateway.projections.settings import ProjectorSettings
from tests.helm.chart import Manifest

COMPONENTS = ("apiserver", "projector", "processor", "gc")
SETTINGS_CLASSES: dict[str, type[Any]] = {
    "apiserver": ApiServerSettings,
    "projector": ProjectorSettings,
    "processor": ProcessorSettings,
    "gc": GcSettings,
}
COMPONENT_LABEL = "app.kubernetes.io/component"
CONFIG_DIR = "/etc/batch-gateway"


def of_kind(manifests: Iterable[Manifest], kind: str) -> list[Manifest]:
    return [m for m in manifests if m.get("kind") == kind]


def one(manifests: Iterable[Manifest], kind: str, name: str | None = None) -> Manifest:
    found = [m for m in of_kind(manifests, kind) if name is None or m["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def deployments(manifests: Iterable[Manifest]) -> dict[str, Manifest]:
    """Deployments by the component they run."""
    return {
        m["spec"]["template"]["metadata"]["labels"][COMPONENT_LABEL]: m
        for m in of_kind(manifests, "Deployment")
    }


def container(deployment: Manifest) -> Manifest:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    assert isinstance(only, dict)
    return only


def env(deployment: Manifest) -> dict[str, Manifest]:
    """The container's environment variables by name (each the whole EnvVar)."""
    return {variable["name"]: variable for variable in container(deployment).get("env", [])}


def settings_config_map(manifests: Iterable[Manifest]) -> Manifest:
    (found,) = [m for m in of_kind(manifests, "ConfigMap") if "apiserver.yaml" in m["data"]]
    return found


def settings_files(manifests: Iterable[Manifest]) -> dict[str, dict[str, Any]]:
    """Each component's settings file, parsed."""
    data = settings_config_map(manifests)["data"]
    return {component: yaml.safe_load(data[f"{component}.yaml"]) for component in COMPONENTS}


def pod_specs(manifests: Iterable[Manifest]) -> Iterator[tuple[str, Manifest]]:
    for manifest in manifests:
        template = manifest.get("spec", {}).get("template")
        if template is not None:
            yield f"{manifest['kind']}/{manifest['metadata']['name']}", template["spec"]
