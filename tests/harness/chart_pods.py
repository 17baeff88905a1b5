"""Run a component as the Helm chart deploys it: its container's arguments, environment and
mounted files, taken from the rendered manifests, on this machine instead of a cluster.

What a cluster would provide is provided here: Secret values come from the test (they point at
its Redis, PostgreSQL and storage), `configMap` volumes are written out from the rendered
ConfigMaps, and `persistentVolumeClaim` and `emptyDir` volumes become directories. Mount paths
are moved under scratch directories (one per PersistentVolumeClaim, shared by every pod that
mounts it, as in a cluster), wherever the environment or a mounted file names them.
Only the addresses that differ between a cluster and a test may be replaced, and each caller
names them (`overrides`): everything else runs exactly as rendered.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import httpx

CLI = Path(sys.executable).with_name("batch-gateway")
COMPONENT_LABEL = "app.kubernetes.io/component"
READY_TIMEOUT_SECONDS = 30.0

Manifest = dict[str, Any]


def deployment(manifests: Iterable[Manifest], component: str) -> Manifest:
    """The one Deployment of `component`."""
    found = [
        m
        for m in manifests
        if m.get("kind") == "Deployment"
        and m["spec"]["template"]["metadata"]["labels"].get(COMPONENT_LABEL) == component
    ]
    assert len(found) == 1, f"expected one Deployment of {component}, found {len(found)}"
    return found[0]


def config_maps(manifests: Iterable[Manifest]) -> dict[str, dict[str, str]]:
    return {
        m["metadata"]["name"]: dict(m.get("data") or {})
        for m in manifests
        if m.get("kind") == "ConfigMap"
    }


class RenderedPod:
    """One Deployment's pod, made runnable here."""

    def __init__(
        self,
        manifest: Manifest,
        *,
        config_maps: Mapping[str, Mapping[str, str]],
        secrets: Mapping[str, Mapping[str, str]],
        root: Path,
        claims: Path,
    ) -> None:
        spec = manifest["spec"]["template"]["spec"]
        containers = spec["containers"]
        assert len(containers) == 1, "each component runs one container"
        self.spec: Manifest = spec
        self.container: Manifest = containers[0]
        self._root = root
        self._claims = claims
        self._mounts = self._materialize_volumes(config_maps, secrets)
        self.environment = self._environment(config_maps, secrets)

    @property
    def args(self) -> list[str]:
        return [*self.container.get("command", []), *self.container.get("args", [])]

    def port(self, name_or_number: str | int) -> int:
        """A probe's port: a number, or the name of one of the container's ports."""
        if isinstance(name_or_number, int):
            return name_or_number
        for port in self.container.get("ports", []):
            if port.get("name") == name_or_number:
                return int(port["containerPort"])
        raise AssertionError(f"the container has no port named {name_or_number!r}")

    def local_path(self, mount_path: str) -> Path:
        """Where a path inside the container lives here."""
        return Path(_relocate(mount_path, self._mounts))

    def _materialize_volumes(
        self,
        config_maps: Mapping[str, Mapping[str, str]],
        secrets: Mapping[str, Mapping[str, str]],
    ) -> dict[str, Path]:
        volumes = {volume["name"]: volume for volume in self.spec.get("volumes", [])}
        mounts: dict[str, Path] = {}
        for mount in self.container.get("volumeMounts", []):
            volume = volumes[mount["name"]]
            directory = self._root / "mounts" / mount["name"]
            if "persistentVolumeClaim" in volume:
                # A claim is one volume, whichever pods mount it.
                directory = self._claims / volume["persistentVolumeClaim"]["claimName"]
            directory.mkdir(parents=True, exist_ok=True)
            if "configMap" in volume:
                _write_items(
                    directory, config_maps[volume["configMap"]["name"]], volume["configMap"]
                )
            elif "secret" in volume:
                _write_items(directory, secrets[volume["secret"]["secretName"]], volume["secret"])
            else:
                assert "persistentVolumeClaim" in volume or "emptyDir" in volume, volume
            mounts[mount["mountPath"]] = directory
        # Mounted files may name other mount paths (a config file naming the files volume).
        for directory in mounts.values():
            for path in directory.iterdir():
                if path.is_file():
                    path.write_text(_relocate(path.read_text(), mounts))
        return mounts

    def _environment(
        self,
        config_maps: Mapping[str, Mapping[str, str]],
        secrets: Mapping[str, Mapping[str, str]],
    ) -> dict[str, str]:
        environment: dict[str, str] = {}
        for variable in self.container.get("env", []):
            source = variable.get("valueFrom")
            if source is None:
                value = str(variable.get("value", ""))
            elif "secretKeyRef" in source:
                ref = source["secretKeyRef"]
                secret = secrets.get(ref["name"], {})
                if ref["key"] not in secret:
                    assert ref.get("optional"), f"secret {ref['name']} has no key {ref['key']}"
                    continue
                value = secret[ref["key"]]
            elif "configMapKeyRef" in source:
                ref = source["configMapKeyRef"]
                value = config_maps[ref["name"]][ref["key"]]
            elif "fieldRef" in source:
                value = f"pod-{source['fieldRef']['fieldPath'].replace('.', '-')}"
            else:
                raise AssertionError(f"unsupported env source: {variable}")
            environment[variable["name"]] = _relocate(value, self._mounts)
        return environment


def _relocate(text: str, mounts: Mapping[str, Path]) -> str:
    if not mounts:
        return text
    # One pass, longest first: a mount nested in another moves to its own directory, and a
    # replacement (which may itself lie under /tmp) is never rewritten again.
    pattern = "|".join(re.escape(path) for path in sorted(mounts, key=len, reverse=True))
    return re.sub(pattern, lambda match: str(mounts[match.group(0)]), text)


def _write_items(directory: Path, data: Mapping[str, str], source: Mapping[str, Any]) -> None:
    items = source.get("items") or [{"key": key, "path": key} for key in data]
    for item in items:
        (directory / item["path"]).write_text(data[item["key"]])


class PodProcess:
    """A rendered pod's container running as a local process."""

    def __init__(self, pod: RenderedPod, overrides: Mapping[str, str], log_path: Path) -> None:
        self.pod = pod
        self.log_path = log_path
        # The test's own environment minus any setting, so only the chart's settings apply.
        environment = {k: v for k, v in os.environ.items() if not k.startswith("BATCH_GATEWAY_")}
        environment = environment | pod.environment | dict(overrides)
        args = pod.args
        assert args, "the container names the component to run"
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [str(CLI), *args], env=environment, stdout=log, stderr=subprocess.STDOUT
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_until_ready(self, port: int, path: str) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}{path}", timeout=2.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"not ready within {READY_TIMEOUT_SECONDS} s:\n{self.log()}")

    def stop(self, grace_seconds: float) -> int:
        """SIGTERM, as the kubelet sends it, and the exit code within the grace period."""
        if self.process.poll() is None:
            self.process.terminate()
        try:
            return self.process.wait(timeout=grace_seconds)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"did not stop within {grace_seconds} s:\n{self.log()}") from None
