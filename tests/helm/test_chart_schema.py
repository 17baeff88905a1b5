"""values.schema.json turns a misspelled or wrongly typed value into an error that names it, at
`helm template`/`install` (render) and at `helm lint`, instead of a silently ignored value."""

from __future__ import annotations

import helm_python
import pytest

from tests.helm.chart import THREE_FLAG_INSTALL, lint_chart, render_chart

REJECTED = {
    # A misspelled key anywhere under a component's config.
    "processor.config.globalInferenceGatway.url=http://x:80": "globalInferenceGatway",
    "processor.config.globalInferenceGateway.urll=http://x:80": "urll",
    "processor.config.modelGateways.llama.ur=http://x:80": "ur",
    "apiserver.config.batchAPI.passthroughHeaders={Authorization}": "passthroughHeaders",
    "global.fileClient.s3.pathStyle=true": "pathStyle",
    "procesor.replicaCount=2": "procesor",
    # Wrong types.
    "apiserver.replicaCount=abc": "/apiserver/replicaCount",
    "global.fileClient.s3.usePathStyle=yes": "/global/fileClient/s3/usePathStyle",
    "processor.config.maxConcurrentJobs=0": "/processor/config/maxConcurrentJobs",
    "processor.config.roles={validate,dispatch}": "/processor/config/roles",
    "apiserver.config.batchAPI.passThroughHeaders=Authorization": "passThroughHeaders",
    "global.fileClient.type=gcs": "/global/fileClient/type",
    "apiserver.config.logLevel=LOUD": "/apiserver/config/logLevel",
    # Numbers given as text (helm --set keeps decimals as strings) must still be numbers: no
    # PromQL or anything else rides along into a rule or a settings file.
    "processor.config.backoffInitialSeconds=0.0": "/processor/config/backoffInitialSeconds",
    "processor.config.backoffInitialSeconds=1e-3": "/processor/config/backoffInitialSeconds",
    "prometheusRule.rules.jobFailureRateHigh.thresholdRatio=0.1 or vector(1)": "thresholdRatio",
    "gc.config.orphanGraceSeconds=-0.5": "/gc/config/orphanGraceSeconds",
    # Prometheus Operator durations: whole numbers, units in descending order.
    "prometheusRule.rules.queueWaitHigh.for=1.5h": "/prometheusRule/rules/queueWaitHigh/for",
    "prometheusRule.rules.jobFailureRateHigh.window=30m1h": "jobFailureRateHigh/window",
    "monitoring.serviceMonitor.interval=0.5m": "/monitoring/serviceMonitor/interval",
    # The projector counts at most 1000 unapplied entries.
    "prometheusRule.rules.projectionLagHigh.thresholdEvents=1000": "thresholdEvents",
    "apiserver.extraEnv[0].value=no-name": "/apiserver/extraEnv/0",
}


@pytest.mark.parametrize(("flag", "named"), REJECTED.items(), ids=REJECTED.keys())
def test_a_bad_value_fails_install_and_lint_naming_the_value(flag: str, named: str) -> None:
    with pytest.raises(helm_python.HelmValuesError, match=named):
        render_chart((*THREE_FLAG_INSTALL, flag))
    findings = lint_chart((*THREE_FLAG_INSTALL, flag))
    assert any(named in finding for finding in findings), findings


def test_global_takes_a_parent_charts_globals_but_checks_its_own() -> None:
    # A parent chart's global values are merged into ours; they are not ours to reject.
    render_chart((*THREE_FLAG_INSTALL, "global.llmdInfraVersion=1.2.3"))
    with pytest.raises(helm_python.HelmValuesError, match="basePth"):
        render_chart((*THREE_FLAG_INSTALL, "global.fileClient.fs.basePth=/data"))


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("global.fileClient.type=s3", "global.fileClient.s3.accessKeyId=a"), "s3.endpoint"),
        (
            ("global.fileClient.type=s3", "global.fileClient.s3.endpoint=http://m:9000"),
            "accessKeyId",
        ),
        (("processor.terminationGracePeriodSeconds=20",), "shutdownGraceSeconds"),
        (
            (
                "processor.config.shutdownGraceSeconds=90",
                "processor.terminationGracePeriodSeconds=60",
            ),
            "must exceed",
        ),
        # A decimal from --set is text, and the check still compares it as a number.
        (
            (
                "processor.config.shutdownGraceSeconds=60.5",
                "processor.terminationGracePeriodSeconds=60",
            ),
            "must exceed",
        ),
        (("apiserver.terminationGracePeriodSeconds=30",), "preStopSleepSeconds"),
        (
            ("monitoring.serviceMonitor.enabled=true", "monitoring.podMonitor.enabled=true"),
            "not both",
        ),
        (
            (
                "processor.autoscaling.enabled=true",
                "processor.autoscaling.minReplicas=5",
                "processor.autoscaling.maxReplicas=2",
            ),
            "must not exceed",
        ),
    ],
)
def test_settings_that_cannot_work_fail_the_render_with_a_reason(
    flags: tuple[str, ...], message: str
) -> None:
    with pytest.raises(helm_python.HelmError, match=message):
        render_chart((*THREE_FLAG_INSTALL, *flags))
