"""The Node project beside this module (package.json pinning `openai`, package-lock.json),
installed with `npm ci` into its own node_modules, and run with `node` as a user would."""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

PROJECT = Path(__file__).resolve().parent
LOCKFILE = PROJECT / "package-lock.json"
# npm writes what it installed here: the lockfile's versions and hashes there mean up to date.
INSTALLED = PROJECT / "node_modules" / ".package-lock.json"
MIN_NODE_MAJOR = 20
NPM_CI_TIMEOUT_SECONDS = 240.0


@dataclass(frozen=True)
class NodeProject:
    node: str
    directory: Path

    def run(
        self, script: str, *args: str, environment: Mapping[str, str], timeout: float
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.node, script, *args],
            cwd=self.directory,
            env=dict(environment),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def installed_project() -> NodeProject:
    """`node` and the project with its locked packages installed (by `npm ci` when they are
    not, or not the locked ones). Without node or npm on PATH the test is skipped, except
    under CI, where that is a broken machine and fails."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        reason = f"{'node' if node is None else 'npm'} is not on PATH; the Node SDK test needs it"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (and CI is set: the CI machine must have Node 20+)")
        pytest.skip(reason)
    _check_node_version(node)
    # Two pytest processes on one checkout must not run `npm ci` over each other.
    with LOCKFILE.open("rb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _up_to_date():
            _npm_ci(npm)
    return NodeProject(node, PROJECT)


def _check_node_version(node: str) -> None:
    version = subprocess.run(
        [node, "--version"], capture_output=True, text=True, timeout=30, check=True
    ).stdout.strip()
    match = re.match(r"v(\d+)\.", version)
    assert match is not None, f"unexpected `node --version`: {version!r}"
    assert int(match.group(1)) >= MIN_NODE_MAJOR, f"Node {version} is older than v{MIN_NODE_MAJOR}"


def _packages(path: Path) -> dict[str, tuple[str, str]]:
    """Each package's version and integrity hash (not `resolved`, which npm's settings omit or
    keep); the project itself, which only the lockfile lists, is left out."""
    packages: dict[str, dict[str, Any]] = json.loads(path.read_text())["packages"]
    return {
        name: (entry["version"], entry["integrity"]) for name, entry in packages.items() if name
    }


def _up_to_date() -> bool:
    if not INSTALLED.exists():
        return False
    try:
        return _packages(INSTALLED) == _packages(LOCKFILE)
    except (ValueError, KeyError):
        return False


def _npm_ci(npm: str) -> None:
    result = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=NPM_CI_TIMEOUT_SECONDS,
        check=False,
    )
    assert result.returncode == 0, f"npm ci failed:\n{result.stdout}\n{result.stderr}"
    assert _up_to_date(), "npm ci installed something other than package-lock.json"
