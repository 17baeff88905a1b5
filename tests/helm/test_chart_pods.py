"""What each component's pod gets: the restricted security context, probes on its own port,
its settings file, secrets from Secrets only, the files volume, and a grace period that covers
its shutdown."""

from __future__ import annotations

import base64
import re
import tomllib
from typing import Any

import helm_python
import pytest
import yaml

from batch_gateway.processors.settings import ProcessorSettings
from batch_gateway.secret_store import load_secrets_key
from tests.helm.chart import (
    CHART_DIR,
    EVERYTHING_ON,
    MODEL_GATEWAYS_INSTALL,
    NAMESPACE,
    S3_INSTALL,
    THREE_FLAG_INSTALL,
    VALUE_SETS,
    render_chart,
    render_notes,
)
from tests.helm.manifests import (
    COMPONENTS,
    CONFIG_DIR,
    container,
    deployments,
    env,
    of_kind,
    one,
    pod_specs,
    settings_files,
)
from tests.helm.rendered_settings import USER_SECRET

PORTS = {"apiserver": 8000, "projector": 9101, "processor": 9102, "gc": 9103}
SECRET_VARIABLES = {
    "BATCH_GATEWAY_REDIS_URL": "redis-url",
    "BATCH_GATEWAY_POSTGRES_URL": "postgresql-url",
    "BATCH_GATEWAY_STORAGE_S3_SECRET_KEY": "s3-secret-access-key",
    "BATCH_GATEWAY_GLOBAL_INFERENCE_GATEWAY_API_KEY": "inference-api-key",
    "BATCH_GATEWAY_WEBHOOK_SECRET": "webhook-secret",
    "BATCH_GATEWAY_API_KEYS": "api-keys",
    "BATCH_GATEWAY_SECRETS_KEY": "secrets-key",
}
FILES_MOUNT = "/var/lib/batch-gateway/files"


@pytest.mark.parametrize("value_set", VALUE_SETS.values(), ids=VALUE_SETS.keys())
def test_every_pod_runs_under_the_restricted_security_context(value_set: tuple[str, ...]) -> None:
    specs = list(pod_specs(render_chart(value_set)))
    assert len(specs) == 4
    for name, spec in specs:
        pod = spec["securityContext"]
        assert (pod["runAsNonRoot"], pod["runAsUser"], pod["runAsGroup"]) == (True, 65532, 65532)
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert not spec.get("hostNetwork"), name
        assert not spec.get("hostPID"), name
        # No <SERVICE>_PORT=tcp://... variables: a Service named batch-gateway in the namespace
        # would set BATCH_GATEWAY_PORT, which the settings would read as the port.
        assert spec["enableServiceLinks"] is False, name
        for each in spec["containers"]:
            context = each["securityContext"]
            assert context["runAsNonRoot"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["capabilities"] == {"drop": ["ALL"]}, name
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}, name
        # The read-only root needs a writable /tmp.
        tmp = next(m for m in spec["containers"][0]["volumeMounts"] if m["mountPath"] == "/tmp")
        volume = next(v for v in spec["volumes"] if v["name"] == tmp["name"])
        assert volume == {"name": tmp["name"], "emptyDir": {}}


@pytest.mark.parametrize("value_set", VALUE_SETS.values(), ids=VALUE_SETS.keys())
def test_each_component_runs_its_command_and_probes_its_own_port(
    value_set: tuple[str, ...],
) -> None:
    manifests = render_chart(value_set)
    found = deployments(manifests)
    assert set(found) == set(COMPONENTS)
    for component, deployment in found.items():
        main = container(deployment)
        # The image's ENTRYPOINT is `batch-gateway`.
        assert "command" not in main
        assert main["args"] == [component]
        (port,) = main["ports"]
        assert port["containerPort"] == PORTS[component]
        assert port["name"] == ("http" if component == "apiserver" else "metrics")
        assert main["livenessProbe"]["httpGet"] == {"path": "/health", "port": port["name"]}
        # Liveness waits for the first /health: migrations run before the port opens.
        startup = main["startupProbe"]
        assert startup["httpGet"] == {"path": "/health", "port": port["name"]}
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 120
        assert main["readinessProbe"]["httpGet"] == {"path": "/ready", "port": port["name"]}
        assert settings_files(manifests)[component]["port"] == port["containerPort"]
        assert env(deployment)["BATCH_GATEWAY_CONFIG"]["value"] == f"{CONFIG_DIR}/{component}.yaml"
        config_mount = next(m for m in main["volumeMounts"] if m["mountPath"] == CONFIG_DIR)
        assert config_mount["readOnly"] is True
        assert main["resources"]["requests"]


def test_the_api_service_is_port_8000_named_http_and_the_others_expose_metrics() -> None:
    manifests = render_chart(THREE_FLAG_INSTALL)
    services = {s["metadata"]["name"]: s["spec"] for s in of_kind(manifests, "Service")}
    api = services.pop("batch-gateway-apiserver")
    assert api["ports"] == [{"name": "http", "port": 8000, "targetPort": "http", "protocol": "TCP"}]
    assert api["selector"]["app.kubernetes.io/component"] == "apiserver"
    assert sorted(services) == [
        f"batch-gateway-{c}-metrics" for c in ("gc", "processor", "projector")
    ]
    for spec in services.values():
        (port,) = spec["ports"]
        assert (port["name"], port["targetPort"]) == ("metrics", "metrics")


@pytest.mark.parametrize("value_set", VALUE_SETS.values(), ids=VALUE_SETS.keys())
def test_secrets_come_from_secrets_and_never_from_a_config_map(value_set: tuple[str, ...]) -> None:
    manifests = render_chart(value_set)
    for config_map in of_kind(manifests, "ConfigMap"):
        text = yaml.safe_dump(config_map["data"])
        for forbidden in [*USER_SECRET.values(), *SECRET_VARIABLES, *SECRET_VARIABLES.values()]:
            assert forbidden not in text, (config_map["metadata"]["name"], forbidden)
        for settings in (
            yaml.safe_load(v) for k, v in config_map["data"].items() if k.endswith(".yaml")
        ):
            assert not {"redis_url", "postgres_url", "secrets_key", "webhook_secret"} & set(
                settings
            )
            assert "s3_secret_key" not in settings["storage"]
    for deployment in deployments(manifests).values():
        for name, variable in env(deployment).items():
            if name in SECRET_VARIABLES:
                reference = variable["valueFrom"]["secretKeyRef"]
                assert reference["key"] == SECRET_VARIABLES[name]


def test_each_component_gets_the_secrets_it_needs_and_no_others() -> None:
    needs = {
        "apiserver": {"REDIS_URL", "POSTGRES_URL", "SECRETS_KEY", "STORAGE_S3_SECRET_KEY"},
        # The projector reads the log's archive in file storage; it seals no headers.
        "projector": {"REDIS_URL", "POSTGRES_URL", "STORAGE_S3_SECRET_KEY"},
        "processor": {
            "REDIS_URL",
            "POSTGRES_URL",
            "SECRETS_KEY",
            "STORAGE_S3_SECRET_KEY",
            "GLOBAL_INFERENCE_GATEWAY_API_KEY",
            "WEBHOOK_SECRET",
        },
        "gc": {"REDIS_URL", "POSTGRES_URL", "SECRETS_KEY", "STORAGE_S3_SECRET_KEY"},
    }
    for value_set, s3 in ((THREE_FLAG_INSTALL, False), (S3_INSTALL, True)):
        for component, deployment in deployments(render_chart(value_set)).items():
            expected = {n for n in needs[component] if s3 or n != "STORAGE_S3_SECRET_KEY"}
            secret_names = {
                name.removeprefix("BATCH_GATEWAY_")
                for name, variable in env(deployment).items()
                if "secretKeyRef" in variable.get("valueFrom", {})
            }
            assert secret_names == expected, component
            for name in ("REDIS_URL", "POSTGRES_URL", "STORAGE_S3_SECRET_KEY"):
                if name in expected:
                    reference = env(deployment)[f"BATCH_GATEWAY_{name}"]["valueFrom"]
                    assert reference["secretKeyRef"]["name"] == "batch-gateway-secrets"
                    assert not reference["secretKeyRef"].get("optional")


def test_the_secrets_key_is_generated_once_kept_and_replaceable() -> None:
    manifests = render_chart(THREE_FLAG_INSTALL)
    secret = one(manifests, "Secret", "batch-gateway-encryption")
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    key = base64.b64decode(secret["data"]["secrets-key"]).decode()
    assert len(load_secrets_key(key)) == 32
    # The template keeps an existing key: it reads it back with `lookup` before generating one.
    template = (CHART_DIR / "templates" / "secret-encryption.yaml").read_text()
    assert "lookup" in template
    for deployment in deployments(manifests).values():
        reference = env(deployment).get("BATCH_GATEWAY_SECRETS_KEY")
        if reference is not None:
            ref = reference["valueFrom"]["secretKeyRef"]
            assert (ref["name"], ref["key"]) == ("batch-gateway-encryption", "secrets-key")
    own = render_chart(
        (*THREE_FLAG_INSTALL, "secretsKey.existingSecret=mine", "secretsKey.existingSecretKey=k")
    )
    assert of_kind(own, "Secret") == []
    ref = env(deployments(own)["processor"])["BATCH_GATEWAY_SECRETS_KEY"]["valueFrom"]
    assert ref["secretKeyRef"] == {"name": "mine", "key": "k"}


def _files_volume(deployment: dict[str, Any]) -> dict[str, Any] | None:
    mounts = [m for m in container(deployment)["volumeMounts"] if m["mountPath"] == FILES_MOUNT]
    if not mounts:
        return None
    (mount,) = mounts
    spec = deployment["spec"]["template"]["spec"]
    volume: dict[str, Any] = next(v for v in spec["volumes"] if v["name"] == mount["name"])
    return volume


def test_files_live_on_the_named_claim_and_fs_without_one_is_refused() -> None:
    found = deployments(render_chart(THREE_FLAG_INSTALL))
    # The projector too: a rebuild, or a projector back after the retention, reads the archive.
    for component in ("apiserver", "projector", "processor", "gc"):
        volume = _files_volume(found[component])
        assert volume is not None
        assert volume["persistentVolumeClaim"] == {"claimName": "batch-gateway-pvc"}
    assert "WARNING" not in render_notes(THREE_FLAG_INSTALL)

    # A volume per pod cannot work: the processor would not see what the apiserver stored.
    with pytest.raises(helm_python.HelmError, match=r"global\.fileClient\.fs\.pvcName must name"):
        render_chart(("processor.config.globalInferenceGateway.url=http://gw:80",))

    for deployment in deployments(render_chart(S3_INSTALL)).values():
        assert _files_volume(deployment) is None


def test_notes_tell_how_to_verify_the_install() -> None:
    notes = render_notes(THREE_FLAG_INSTALL)
    assert f"kubectl -n {NAMESPACE} port-forward svc/batch-gateway-apiserver 8000:8000" in notes
    assert "curl http://127.0.0.1:8000/health" in notes
    assert 'OpenAI(base_url="http://127.0.0.1:8000/v1"' in notes
    assert "redis-url and postgresql-url" in notes
    assert "s3-secret-access-key" in render_notes(S3_INSTALL)
    assert "neither processor.config.globalInferenceGateway.url" in render_notes(
        ("global.fileClient.fs.pvcName=pvc",)
    )


def test_notes_name_the_console_and_where_the_route_serves_it() -> None:
    notes = render_notes(THREE_FLAG_INSTALL)
    assert "The console is at http://127.0.0.1:8000/console/" in notes
    assert "console" not in render_notes((*THREE_FLAG_INSTALL, "apiserver.config.console=false"))
    routed = render_notes((*THREE_FLAG_INSTALL, "apiserver.httpRoute.enabled=true"))
    assert "routes /v1/files, /v1/batches and /console of its parent Gateway" in routed
    prefixed = render_notes(
        (
            *THREE_FLAG_INSTALL,
            "apiserver.httpRoute.enabled=true",
            "apiserver.httpRoute.pathPrefix=/batch-gateway",
        )
    )
    assert "/batch-gateway/console/ the console" in prefixed


def test_notes_render_without_a_global_gateway_and_without_the_apiserver() -> None:
    # A values file with `globalInferenceGateway:` (null) removes the key altogether.
    no_gateway = {"processor": {"config": {"globalInferenceGateway": None}}}
    notes = render_notes(MODEL_GATEWAYS_INSTALL, values=no_gateway)
    assert "WARNING" not in notes
    assert "neither" in render_notes(("global.fileClient.fs.pvcName=pvc",), values=no_gateway)
    without_api = render_notes((*THREE_FLAG_INSTALL, "apiserver.enabled=false"))
    assert "port-forward" not in without_api
    assert "OpenAI(" not in without_api
    assert "get pods" in without_api


def test_notes_say_where_the_sdks_api_key_goes() -> None:
    # passThroughHeaders={Authorization}: the SDK's key reaches the inference gateway.
    forwarded = render_notes(THREE_FLAG_INSTALL)
    assert 'api_key="YOUR_INFERENCE_TOKEN"' in forwarded
    assert "forwards to the inference gateway" in forwarded
    # With API keys the bearer key is this gateway's own, and Authorization stays here.
    keyed = render_notes((*THREE_FLAG_INSTALL, "apiserver.apiKeysSecretKey=api-keys"))
    assert 'api_key="sk-..."' in keyed
    assert '"api-keys"' in keyed
    assert "never forwarded to the inference gateway" in keyed
    assert "YOUR_INFERENCE_TOKEN" not in keyed
    unused = render_notes(
        ("global.fileClient.fs.pvcName=pvc", "apiserver.config.batchAPI.passThroughHeaders={X-Org}")
    )
    assert 'api_key="unused"' in unused
    assert "neither checked nor forwarded" in unused


def test_the_processor_gets_longer_than_its_shutdown_grace_and_gc_runs_alone() -> None:
    found = deployments(render_chart(THREE_FLAG_INSTALL))
    processor_grace = found["processor"]["spec"]["template"]["spec"][
        "terminationGracePeriodSeconds"
    ]
    # The code's default shutdown_grace_seconds, which the values leave alone.
    assert processor_grace > ProcessorSettings().shutdown_grace_seconds
    assert found["gc"]["spec"]["replicas"] == 1


def _uvicorn_graceful_shutdown_seconds() -> int:
    """How long the apiserver lets requests in flight finish after SIGTERM, from its source."""
    source = (CHART_DIR.parents[1] / "gateway" / "component.py").read_text()
    found = re.search(r"timeout_graceful_shutdown=(\d+)", source)
    assert found is not None
    return int(found.group(1))


def test_the_apiserver_drains_before_it_is_killed() -> None:
    drain = _uvicorn_graceful_shutdown_seconds()
    apiserver = deployments(render_chart(THREE_FLAG_INSTALL))["apiserver"]
    spec = apiserver["spec"]["template"]["spec"]
    pre_stop = container(apiserver)["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    assert int(pre_stop[1]) > 0
    # The kubelet counts the preStop hook against the grace period, then SIGTERM starts the drain.
    assert spec["terminationGracePeriodSeconds"] > int(pre_stop[1]) + drain
    # The other components are not behind a Service that routes requests to them.
    for component in ("projector", "processor", "gc"):
        assert "lifecycle" not in container(
            deployments(render_chart(THREE_FLAG_INSTALL))[component]
        )

    no_sleep = deployments(render_chart((*THREE_FLAG_INSTALL, "apiserver.preStopSleepSeconds=0")))
    assert "lifecycle" not in container(no_sleep["apiserver"])
    just_enough = (
        *THREE_FLAG_INSTALL,
        "apiserver.preStopSleepSeconds=10",
        f"apiserver.terminationGracePeriodSeconds={drain + 11}",
    )
    render_chart(just_enough)
    for too_short in (
        (f"apiserver.terminationGracePeriodSeconds={drain}", "apiserver.preStopSleepSeconds=0"),
        (
            f"apiserver.terminationGracePeriodSeconds={drain + 10}",
            "apiserver.preStopSleepSeconds=10",
        ),
    ):
        with pytest.raises(
            helm_python.HelmError,
            match=r"apiserver\.terminationGracePeriodSeconds \(\d+\) must exceed",
        ):
            render_chart((*THREE_FLAG_INSTALL, *too_short))


@pytest.mark.parametrize("value_set", VALUE_SETS.values(), ids=VALUE_SETS.keys())
def test_no_container_gets_two_variables_of_one_name(value_set: tuple[str, ...]) -> None:
    """Server-side apply rejects a container whose env names a variable twice."""
    for component, deployment in deployments(render_chart(value_set)).items():
        names = [variable["name"] for variable in container(deployment)["env"]]
        assert len(names) == len(set(names)), component


def test_extra_env_replaces_a_variable_the_chart_sets_in_place() -> None:
    flags = (
        *EVERYTHING_ON,
        "processor.extraEnv[1].name=BATCH_GATEWAY_CONFIG",
        "processor.extraEnv[1].value=/etc/mine/processor.yaml",
        "processor.extraEnv[2].name=POD_NAME",
        "processor.extraEnv[2].value=fixed-pod",
    )
    variables = container(deployments(render_chart(flags))["processor"])["env"]
    names = [variable["name"] for variable in variables]
    assert len(names) == len(set(names))
    assert env(deployments(render_chart(flags))["processor"])["BATCH_GATEWAY_CONFIG"] == {
        "name": "BATCH_GATEWAY_CONFIG",
        "value": "/etc/mine/processor.yaml",
    }
    # In place: OTEL_RESOURCE_ATTRIBUTES' $(POD_NAME) needs POD_NAME defined before it.
    assert names.index("POD_NAME") < names.index("OTEL_RESOURCE_ATTRIBUTES")
    assert variables[names.index("POD_NAME")] == {"name": "POD_NAME", "value": "fixed-pod"}
    # A new name still comes after the chart's.
    assert names[-1] == "EXTRA_SETTING"


def test_a_changed_setting_rolls_only_the_pods_that_read_it() -> None:
    def checksums(flags: tuple[str, ...]) -> dict[str, str]:
        return {
            component: d["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
            for component, d in deployments(render_chart(flags)).items()
        }

    before = checksums(THREE_FLAG_INSTALL)
    after = checksums((*THREE_FLAG_INSTALL, "processor.config.maxConcurrentJobs=9"))
    assert {c for c in COMPONENTS if before[c] != after[c]} == {"processor"}
    after = checksums((*THREE_FLAG_INSTALL, "global.keyPrefix=other"))
    assert all(before[c] != after[c] for c in COMPONENTS)


def test_opentelemetry_extra_env_pull_secrets_and_service_account() -> None:
    manifests = render_chart(EVERYTHING_ON)
    for component, deployment in deployments(manifests).items():
        variables = env(deployment)
        assert variables["OTEL_SERVICE_NAME"]["value"] == f"batch-gateway-{component}"
        assert variables["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"] == (
            "http://otel-collector.observability.svc:4318"
        )
        assert variables["OTEL_EXPORTER_OTLP_PROTOCOL"]["value"] == "http/protobuf"
        assert variables["OTEL_TRACES_SAMPLER"]["value"] == "parentbased_traceidratio"
        assert variables["OTEL_RESOURCE_ATTRIBUTES"]["value"].startswith(
            "deployment.environment=prod,k8s.namespace.name=batch-gateway"
        )
        spec = deployment["spec"]["template"]["spec"]
        assert spec["imagePullSecrets"] == [{"name": "registry"}]
        assert spec["serviceAccountName"] == "batch-gateway"
        assert spec["automountServiceAccountToken"] is False
    assert env(deployments(manifests)["processor"])["EXTRA_SETTING"] == {
        "name": "EXTRA_SETTING",
        "value": "on",
    }
    for deployment in deployments(render_chart(THREE_FLAG_INSTALL)).values():
        assert not any(name.startswith("OTEL_") for name in env(deployment))


def test_the_default_image_is_the_projects_version() -> None:
    pyproject = tomllib.loads((CHART_DIR.parents[1] / "pyproject.toml").read_text())
    chart = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())
    assert chart["appVersion"] == pyproject["project"]["version"]
    for deployment in deployments(render_chart(THREE_FLAG_INSTALL)).values():
        image = container(deployment)["image"]
        assert image == f"ghcr.io/llm-d-incubation/batch-gateway-python:{chart['appVersion']}"
    pinned = render_chart((*THREE_FLAG_INSTALL, "image.digest=sha256:" + "a" * 64))
    assert container(deployments(pinned)["gc"])["image"].endswith("@sha256:" + "a" * 64)
