"""The Helm chart's output and input: lint, every manifest valid against the Kubernetes and CRD
schemas, bad or inconsistent values refused, and the README and NOTES in step with the values."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.chart_support import K8S_VERSIONS, VALUE_SETS, assert_valid_objects, helm_fails
from tests.deploy.crds import validate_custom
from tests.deploy.support import (
    CHART,
    NAMESPACE,
    RELEASE,
    VALUES_DIR,
    Rendered,
    run_helm,
    values_args,
)

# ------------------------------------------------------------------------------------ validity


@pytest.mark.parametrize("name", VALUE_SETS)
def test_helm_lint_strict(helm: str, name: str) -> None:
    result = run_helm(helm, "lint", "--strict", str(CHART), *values_args((name,), ()))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


def value_namespaces(values: dict[str, Any]) -> frozenset[str]:
    """Namespaces the values put objects in besides the release's."""
    keys = ("serviceMonitor", "dashboard", "prometheusRule", "deadLetterTopic")
    return frozenset(values[k]["namespace"] for k in keys if values[k].get("namespace"))


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("name", VALUE_SETS)
def test_manifests_valid_kubernetes_objects(
    rendered_sets: dict[str, Rendered], name: str, version: str
) -> None:
    rendered = rendered_sets[name]
    assert_valid_objects(rendered.manifests, version, name, value_namespaces(rendered.values))


def test_custom_resource_schemas_catch_mistakes(rendered_sets: dict[str, Rendered]) -> None:
    """The hand-written CRD schemas reject what KEDA would: metadata that is not a string."""
    import jsonschema

    scaled = json.loads(json.dumps(rendered_sets["keda"].one("ScaledObject")))
    scaled["spec"]["triggers"][0]["metadata"]["lagThreshold"] = 5000
    with pytest.raises(jsonschema.ValidationError):
        validate_custom(scaled)


def test_every_value_set_kind_inventory(rendered_sets: dict[str, Rendered]) -> None:
    kinds = {name: sorted(m["kind"] for m in rendered_sets[name].manifests) for name in VALUE_SETS}
    base = ["ConfigMap", "Deployment", "PodDisruptionBudget", "Service", "ServiceAccount"]
    assert kinds["required"] == base
    assert kinds["hpa"] == sorted([*base, "HorizontalPodAutoscaler"])
    assert kinds["keda"] == sorted([*base, "ConfigMap", "ScaledObject", "ServiceMonitor"])
    assert kinds["msk-iam"] == sorted([*base, "ScaledObject", "TriggerAuthentication"])
    assert kinds["tls-scram"] == sorted([*base, "ScaledObject", "Secret", "TriggerAuthentication"])
    extras = ["ConfigMap", "KafkaTopic", "PrometheusRule", "ServiceMonitor"]  # + the dashboard
    assert kinds["registry"] == sorted([*base, *extras])


# ------------------------------------------------------------------------------- bad values


@pytest.mark.parametrize(
    ("setting", "named"),
    [
        ("config.logLevel=TRACE", "/config/logLevel"),
        ("config.maxInFlightCalls=0", "/config/maxInFlightCalls"),
        ("config.consumeBatchSize=100001", "/config/consumeBatchSize"),
        ("config.kafkaAutoOffsetReset=newest", "/config/kafkaAutoOffsetReset"),
        ("config.maxPollIntervalMs=5000", "/config/maxPollIntervalMs"),
        ("config.metricsPort=80", "/config/metricsPort"),
        ("config.awsRegion=Ireland", "/config/awsRegion"),
        ("config.personalizeTrackingId=", "/config/personalizeTrackingId"),
        ("config.deadLetterTopic=dead letters", "/config/deadLetterTopic"),
        ("config.maxCallsPerSecond=0", "/config/maxCallsPerSecond"),
        ("kafka.securityProtocol=TLS", "/kafka/securityProtocol"),
        ("kafka.sasl.mechanism=GSSAPI", "/kafka/sasl/mechanism"),
        ("serviceAccount.irsaRoleArn=my-role", "/serviceAccount/irsaRoleArn"),
        ("keda.triggerType=kafka-go", "/keda/triggerType"),
        ("config.typo=1", "/config"),
        ("autoscalling.enabled=true", "autoscalling"),
    ],
)
def test_schema_rejects_bad_values(helm: str, setting: str, named: str) -> None:
    error = helm_fails(helm, setting)
    assert "values don't meet the specifications of the schema" in error
    assert named in error


def test_schema_requires_the_required_settings(helm: str) -> None:
    result = run_helm(helm, "template", RELEASE, str(CHART))
    assert result.returncode != 0
    for key in (
        "kafkaBootstrapServers",
        "sourceTopics",
        "deadLetterTopic",
        "personalizeTrackingId",
    ):
        assert f"/config/{key}" in result.stderr


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (
            ("kafka.securityProtocol=SASL_SSL",),
            "kafka.securityProtocol SASL_SSL needs kafka.sasl.mechanism",
        ),
        (
            (
                "kafka.securityProtocol=SASL_SSL",
                "kafka.sasl.mechanism=SCRAM-SHA-256",
                "kafka.sasl.username=u",
            ),
            "SASL SCRAM-SHA-256 needs a password",
        ),
        (
            ("kafka.sasl.mechanism=PLAIN",),
            "kafka.sasl.mechanism PLAIN needs kafka.securityProtocol",
        ),
        (
            ("kafka.sasl.password=p", "existingSecret=mine"),
            "kafka.sasl.password and existingSecret are both set",
        ),
        (
            ("kafka.mskIam.enabled=true", "kafka.securityProtocol=SSL"),
            "kafka.mskIam.enabled needs kafka.securityProtocol SASL_SSL",
        ),
        (
            (
                "kafka.securityProtocol=SSL",
                "kafka.tls.existingSecret=s",
                "kafka.tls.certKey=tls.crt",
            ),
            "kafka.tls.certKey and kafka.tls.keyKey go together",
        ),
        (
            ("kafka.tls.existingSecret=s",),
            "kafka.tls files are mounted but kafka.securityProtocol is PLAINTEXT",
        ),
        (
            ("schemas.existingConfigMap=my-schemas",),
            "schemas.existingConfigMap mounts nothing the consumer reads",
        ),
        (
            ("keda.enabled=true", "keda.partitionCount=3", "kafka.mskIam.enabled=true"),
            "keda.enabled with MSK IAM uses the workload's IRSA role",
        ),
        (
            ("serviceMonitor.enabled=true", "service.enabled=false"),
            "serviceMonitor.enabled needs service.enabled",
        ),
    ],
)
def test_inconsistent_values_are_refused(helm: str, sets: tuple[str, ...], message: str) -> None:
    error = helm_fails(helm, *sets)
    assert "personalize-consumer: invalid values:" in error
    assert message in error


def test_all_problems_reported_at_once(helm: str) -> None:
    error = helm_fails(helm, "terminationGracePeriodSeconds=10", "kafka.securityProtocol=SASL_SSL")
    assert "terminationGracePeriodSeconds (10)" in error
    assert "needs kafka.sasl.mechanism" in error


# ------------------------------------------------------------------------------------- docs


def _leaf_paths(values: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    paths: list[tuple[str, Any]] = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        paths.append((path, value))
        if isinstance(value, dict) and value:
            paths += _leaf_paths(value, f"{path}.")
    return paths


def test_readme_documents_every_value() -> None:
    readme = (CHART / "README.md").read_text()
    documented = set(re.findall(r"^\| `([^`]+)` \|", readme, flags=re.MULTILINE))
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    missing = []
    for path, value in _leaf_paths(values):
        parents = path.split(".")
        covered = any(
            ".".join(parents[:i]) in documented or ".".join(parents[:i]) + ".*" in documented
            for i in range(1, len(parents) + 1)
        )
        is_leaf = not (isinstance(value, dict) and value)
        if is_leaf and not covered:
            missing.append(path)
    assert not missing, f"values without a row in {CHART.name}/README.md: {missing}"
    stale = {d.removesuffix(".*") for d in documented} - {p for p, _ in _leaf_paths(values)}
    assert not stale, f"README rows for values that do not exist: {stale}"


def test_notes_summarise_the_release(helm: str, tmp_path: Path) -> None:
    """helm template skips NOTES.txt, so render it through a ConfigMap in a copy of the chart."""
    chart = tmp_path / "chart"
    shutil.copytree(CHART, chart)
    notes = (chart / "templates" / "NOTES.txt").read_text()
    (chart / "templates" / "_notes_under_test.tpl").write_text(
        '{{- define "notes-under-test" -}}\n' + notes + "\n{{- end -}}\n"
    )
    (chart / "templates" / "notes-under-test.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\n"
        'data:\n  notes: {{ include "notes-under-test" . | quote }}\n'
    )
    result = run_helm(
        helm,
        "template",
        RELEASE,
        str(chart),
        "--namespace",
        NAMESPACE,
        "--show-only",
        "templates/notes-under-test.yaml",
        "--values",
        str(VALUES_DIR / "hpa.yaml"),
    )
    assert result.returncode == 0, result.stderr
    text = yaml.safe_load(result.stdout)["data"]["notes"]
    assert "clickstream,clickstream-mobile" in text
    assert "HPA on CPU (60%), 2 to 8 replicas" in text
    assert (
        "kubectl -n streaming port-forward service/clickstream-to-personalize 9400:metrics" in text
    )
    assert "within a grace period of 90s" in text
    assert "no serviceAccount.irsaRoleArn is set" in text
