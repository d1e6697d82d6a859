"""The Helm chart, rendered offline with `helm template` over the value sets in values/.

Every rendered manifest is validated against the Kubernetes OpenAPI schemas (kubernetes-validate,
strict: unknown fields fail) for the oldest Kubernetes the chart supports and a recent one; the
custom resources against the structural schemas in crds.py. The rest checks what users rely on:
settings reach the container, secrets stay in Secrets, the pod is locked down, probes, IRSA,
shutdown has time to drain, autoscaling is bounded by partitions and HPA/KEDA exclude each other.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path
from typing import Any

import fastavro
import kubernetes_validate
import pytest
import yaml

from tests.deploy.crds import is_custom, validate_custom
from tests.deploy.support import (
    CHART,
    NAMESPACE,
    RELEASE,
    VALUES_DIR,
    Rendered,
    decode_secret,
    run_helm,
    template,
    values_args,
)

VALUE_SETS = ("required", "keda", "msk-iam", "hpa", "tls-scram")
#: The chart's kubeVersion floor and a recent release.
K8S_VERSIONS = ("1.29.0", "1.37.0")

#: config.<key> → the environment variable it sets (README.md of the repository, "Configuration").
CONFIG_ENV = {
    "kafkaBootstrapServers": "KAFKA_BOOTSTRAP_SERVERS",
    "kafkaGroupId": "KAFKA_GROUP_ID",
    "sourceTopics": "SOURCE_TOPICS",
    "deadLetterTopic": "DEAD_LETTER_TOPIC",
    "personalizeTrackingId": "PERSONALIZE_TRACKING_ID",
    "avroSchemaFile": "AVRO_SCHEMA_FILE",
    "kafkaAutoOffsetReset": "KAFKA_AUTO_OFFSET_RESET",
    "awsRegion": "AWS_REGION",
    "awsEndpointUrlPersonalizeEvents": "AWS_ENDPOINT_URL_PERSONALIZE_EVENTS",
    "batchLingerMs": "BATCH_LINGER_MS",
    "maxInFlightCalls": "MAX_IN_FLIGHT_CALLS",
    "maxCallsPerSecond": "MAX_CALLS_PER_SECOND",
    "maxBufferedRecords": "MAX_BUFFERED_RECORDS",
    "commitIntervalMs": "COMMIT_INTERVAL_MS",
    "shutdownTimeoutS": "SHUTDOWN_TIMEOUT_S",
    "consumeBatchSize": "CONSUME_BATCH_SIZE",
    "maxPollIntervalMs": "MAX_POLL_INTERVAL_MS",
    "logLevel": "LOG_LEVEL",
    "metricsPort": "METRICS_PORT",
}
KAFKA_SECURITY_ENV = {
    "KAFKA_SECURITY_PROTOCOL",
    "KAFKA_SASL_MECHANISM",
    "KAFKA_SASL_USERNAME",
    "KAFKA_SASL_PASSWORD",
    "KAFKA_SSL_CA_LOCATION",
    "KAFKA_SSL_CERTIFICATE_LOCATION",
    "KAFKA_SSL_KEY_LOCATION",
    "KAFKA_MSK_IAM",
}
SECRET_ENV = {"KAFKA_SASL_PASSWORD"}


def _env_value(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(value)
    if isinstance(value, str):
        return value.replace(" ", "") if "," in value else value
    return str(value)


def expected_env(values: dict[str, Any]) -> dict[str, str]:
    """The variables a value set must produce, computed independently of the templates."""
    config = values["config"]
    env = {
        CONFIG_ENV[key]: _env_value(value)
        for key, value in config.items()
        if value not in ("", None)
    }
    schemas = values["schemas"]
    if schemas["files"]:
        file = schemas["file"] or next(iter(schemas["files"]))
        env["AVRO_SCHEMA_FILE"] = f"{schemas['mountPath']}/{file}"
    kafka = values["kafka"]
    msk = kafka["mskIam"]["enabled"]
    env["KAFKA_MSK_IAM"] = "true" if msk else "false"
    protocol = kafka["securityProtocol"] or ("SASL_SSL" if msk else "PLAINTEXT")
    env["KAFKA_SECURITY_PROTOCOL"] = protocol
    if protocol.startswith("SASL_"):
        env["KAFKA_SASL_MECHANISM"] = kafka["sasl"]["mechanism"] or "OAUTHBEARER"
    if kafka["sasl"]["username"]:
        env["KAFKA_SASL_USERNAME"] = kafka["sasl"]["username"]
    if kafka["sasl"]["password"]:
        env["KAFKA_SASL_PASSWORD"] = kafka["sasl"]["password"]
    tls = kafka["tls"]
    if tls["existingSecret"] and tls["caKey"]:
        env["KAFKA_SSL_CA_LOCATION"] = f"{tls['mountPath']}/{tls['caKey']}"
    if tls["existingSecret"] and tls["certKey"]:
        env["KAFKA_SSL_CERTIFICATE_LOCATION"] = f"{tls['mountPath']}/{tls['certKey']}"
        env["KAFKA_SSL_KEY_LOCATION"] = f"{tls['mountPath']}/{tls['keyKey']}"
    env.update({k: str(v) for k, v in values["secretEnv"].items()})
    env.update({e["name"]: e["value"] for e in values["extraEnv"] if "value" in e})
    return env


def helm_fails(helm: str, *sets: str, files: tuple[str, ...] = ("required",)) -> str:
    """Render with the given --set values, expect failure, return helm's error output."""
    result = template(helm, files, sets)
    assert result.returncode != 0, f"helm template unexpectedly succeeded with {sets}"
    return result.stderr


def helm_renders(helm: str, *sets: str, files: tuple[str, ...] = ("required",)) -> list[Any]:
    result = template(helm, files, sets)
    assert result.returncode == 0, result.stderr
    return [m for m in yaml.safe_load_all(result.stdout) if m]


def _kind(manifests: list[Any], kind: str) -> dict[str, Any]:
    (found,) = [m for m in manifests if m["kind"] == kind]
    result: dict[str, Any] = found
    return result


# ------------------------------------------------------------------------------------ validity


@pytest.mark.parametrize("name", VALUE_SETS)
def test_helm_lint_strict(helm: str, name: str) -> None:
    result = run_helm(helm, "lint", "--strict", str(CHART), *values_args((name,), ()))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("name", VALUE_SETS)
def test_manifests_valid_kubernetes_objects(
    rendered_sets: dict[str, Rendered], name: str, version: str
) -> None:
    rendered = rendered_sets[name]
    assert rendered.manifests, "nothing rendered"
    for manifest in rendered.manifests:
        where = f"{name}: {manifest['kind']}/{manifest['metadata']['name']}"
        if is_custom(manifest):
            validate_custom(manifest)
            continue
        try:
            kubernetes_validate.validate(manifest, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = "/".join(str(p) for p in exc.path)
            pytest.fail(f"{where} invalid for Kubernetes {version} at {path}: {exc.message}")
        assert manifest["metadata"].get("namespace") == NAMESPACE, where


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


# ------------------------------------------------------------------------------ the consumer pod


@pytest.mark.parametrize("name", VALUE_SETS)
def test_runs_the_consumer(rendered_sets: dict[str, Rendered], name: str) -> None:
    container = rendered_sets[name].container
    assert container["command"] + container["args"] == ["personalize-consumer", "run"]


def test_image_reference(rendered_sets: dict[str, Rendered]) -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert rendered_sets["required"].container["image"] == (
        f"personalize-consumer:{chart['appVersion']}"
    )
    msk = rendered_sets["msk-iam"]
    assert msk.container["image"] == (
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/personalize-consumer@sha256:"
        + "0123456789abcdef" * 4
    )
    assert msk.pod_spec["imagePullSecrets"] == [{"name": "ecr-pull"}]


def test_numeric_image_tag(helm: str) -> None:
    """`--set image.tag=1.2` arrives as a number; it must still make a valid image and label."""
    deployment = _kind(helm_renders(helm, "image.tag=1.2"), "Deployment")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == (
        "personalize-consumer:1.2"
    )
    assert deployment["metadata"]["labels"]["app.kubernetes.io/version"] == "1.2"


def test_rolls_without_an_idle_surge_pod(rendered_sets: dict[str, Rendered]) -> None:
    strategy = rendered_sets["required"].one("Deployment")["spec"]["strategy"]
    assert strategy == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1},
    }


@pytest.mark.parametrize("name", VALUE_SETS)
def test_restricted_security_context(rendered_sets: dict[str, Rendered], name: str) -> None:
    rendered = rendered_sets[name]
    pod = rendered.pod_spec
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    assert not {"hostNetwork", "hostPID", "hostIPC"} & pod.keys()

    sc = rendered.container["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert sc["runAsUser"] == 10001
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["privileged"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}

    volumes = {v["name"]: v for v in pod["volumes"]}
    assert all(
        v.keys() & {"emptyDir", "projected", "configMap", "secret"} for v in volumes.values()
    )
    tmp = [m for m in rendered.container["volumeMounts"] if m["mountPath"] == "/tmp"]
    assert len(tmp) == 1 and "emptyDir" in volumes[tmp[0]["name"]]


@pytest.mark.parametrize("name", VALUE_SETS)
def test_probes_and_metrics_port(rendered_sets: dict[str, Rendered], name: str) -> None:
    rendered = rendered_sets[name]
    container = rendered.container
    (port,) = container["ports"]
    assert port["name"] == "metrics"
    assert str(port["containerPort"]) == rendered.effective_env()["METRICS_PORT"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    # Startup may take a while (group join, dead-letter topic check); liveness must not kill it.
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 60
    liveness = container["livenessProbe"]
    assert liveness["periodSeconds"] * liveness["failureThreshold"] >= 30

    service = rendered.one("Service")
    (service_port,) = service["spec"]["ports"]
    assert service_port["name"] == "metrics"
    assert service_port["targetPort"] == "metrics"
    assert service_port["port"] == rendered.values["service"]["port"]


def test_resources_sized_for_one_core(rendered_sets: dict[str, Rendered]) -> None:
    resources = rendered_sets["required"].container["resources"]
    assert resources["requests"] == {"cpu": "1", "memory": "256Mi"}
    assert resources["limits"]["cpu"] == "1"


def test_scheduling_values_pass_through(rendered_sets: dict[str, Rendered]) -> None:
    hpa = rendered_sets["hpa"]
    pod = hpa.pod_spec
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert pod["tolerations"][0]["key"] == "dedicated"
    assert pod["priorityClassName"] == "streaming"
    term = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    # templated: the release name is filled in
    assert term[0]["podAffinityTerm"]["labelSelector"]["matchLabels"] == {
        "app.kubernetes.io/instance": RELEASE
    }
    template_meta = hpa.one("Deployment")["spec"]["template"]["metadata"]
    assert template_meta["labels"]["team"] == "recommendations"
    assert template_meta["annotations"]["cluster-autoscaler.kubernetes.io/safe-to-evict"] == "true"
    spread = rendered_sets["keda"].pod_spec["topologySpreadConstraints"]
    assert spread[0]["labelSelector"]["matchLabels"] == {"app.kubernetes.io/instance": RELEASE}


# ---------------------------------------------------------------------------------- settings


@pytest.mark.parametrize("name", VALUE_SETS)
def test_env_carries_every_setting_from_values(
    rendered_sets: dict[str, Rendered], name: str
) -> None:
    rendered = rendered_sets[name]
    env = rendered.effective_env()
    expected = expected_env(rendered.values)
    if rendered.values["existingSecret"]:
        # secret settings come from the user's Secret, which the chart only references
        secret_refs = [
            s["secretRef"]["name"] for s in rendered.container["envFrom"] if "secretRef" in s
        ]
        assert secret_refs == [rendered.values["existingSecret"]]
    mismatched = {k: (env.get(k), v) for k, v in expected.items() if env.get(k) != v}
    assert not mismatched, f"{name}: (rendered, expected) {mismatched}"
    unexpected = set(env) - set(expected)
    assert not unexpected, f"{name}: variables nobody asked for: {unexpected}"


def test_value_sets_cover_every_setting(rendered_sets: dict[str, Rendered]) -> None:
    seen: set[str] = set()
    for name in VALUE_SETS:
        seen |= set(rendered_sets[name].effective_env())
    assert set(CONFIG_ENV.values()) | KAFKA_SECURITY_ENV <= seen
    assert set(CONFIG_ENV) == set(rendered_sets["required"].values["config"])


def test_numbers_render_without_exponents(rendered_sets: dict[str, Rendered]) -> None:
    env = rendered_sets["tls-scram"].effective_env()
    assert env["MAX_POLL_INTERVAL_MS"] == "86400000"
    assert rendered_sets["keda"].effective_env()["MAX_CALLS_PER_SECOND"] == "250.5"


def test_secret_values_only_in_the_secret(rendered_sets: dict[str, Rendered]) -> None:
    rendered = rendered_sets["tls-scram"]
    secrets = {
        rendered.values["kafka"]["sasl"]["password"],
        *rendered.values["secretEnv"].values(),
    }
    secret = rendered.one("Secret")
    assert secrets <= set(decode_secret(secret).values())
    assert set(decode_secret(secret)) == {"KAFKA_SASL_PASSWORD", "KAFKA_SSL_KEY_PASSWORD"}
    assert "stringData" not in secret  # base64 only: no clear text in the rendered release
    for manifest in rendered.manifests:
        text = json.dumps(manifest)
        for value in secrets:
            assert value not in text, f"{manifest['kind']} holds a secret in clear"
    configmap = rendered.named("ConfigMap", f"{RELEASE}-personalize-consumer")
    assert configmap is not None
    assert not SECRET_ENV & set(configmap["data"])
    assert not {"KAFKA_SSL_KEY_PASSWORD"} & set(configmap["data"])


def test_existing_secret_replaces_the_chart_secret(rendered_sets: dict[str, Rendered]) -> None:
    rendered = rendered_sets["msk-iam"]
    assert rendered.maybe("Secret") is None
    assert {"secretRef": {"name": "personalize-consumer-managed"}} in rendered.container["envFrom"]
    assert (
        "checksum/secret"
        not in rendered.one("Deployment")["spec"]["template"]["metadata"]["annotations"]
    )


def test_no_secret_without_secret_values(rendered_sets: dict[str, Rendered]) -> None:
    rendered = rendered_sets["required"]
    assert rendered.maybe("Secret") is None
    assert all("secretRef" not in s for s in rendered.container["envFrom"])


def test_config_change_rolls_the_pods(helm: str, rendered_sets: dict[str, Rendered]) -> None:
    def checksum(manifests: list[Any]) -> str:
        meta = _kind(manifests, "Deployment")["spec"]["template"]["metadata"]
        value: str = meta["annotations"]["checksum/config"]
        return value

    before = checksum(rendered_sets["required"].manifests)
    after = checksum(helm_renders(helm, "config.logLevel=DEBUG"))
    assert re.fullmatch("[0-9a-f]{64}", before)
    assert before != after


def test_tls_files_mounted_from_the_secret(rendered_sets: dict[str, Rendered]) -> None:
    rendered = rendered_sets["tls-scram"]
    tls = rendered.values["kafka"]["tls"]
    volumes = {v["name"]: v for v in rendered.pod_spec["volumes"]}
    mounts = {m["mountPath"]: m for m in rendered.container["volumeMounts"]}
    mount = mounts[tls["mountPath"]]
    assert mount["readOnly"] is True
    (source,) = volumes[mount["name"]]["projected"]["sources"]
    assert source["secret"]["name"] == "kafka-client-tls"
    files = {item["path"] for item in source["secret"]["items"]}
    assert files == {"ca.crt", "tls.crt", "tls.key"}
    env = rendered.effective_env()
    for var in (
        "KAFKA_SSL_CA_LOCATION",
        "KAFKA_SSL_CERTIFICATE_LOCATION",
        "KAFKA_SSL_KEY_LOCATION",
    ):
        directory, _, file = env[var].rpartition("/")
        assert directory == tls["mountPath"] and file in files, var


def test_tls_ca_from_a_configmap(helm: str) -> None:
    manifests = helm_renders(
        helm,
        "kafka.securityProtocol=SSL",
        "kafka.tls.existingConfigMap=corp-ca-bundle",
        "kafka.tls.caKey=ca-bundle.pem",
    )
    pod = _kind(manifests, "Deployment")["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if "projected" in v]
    assert volume["projected"]["sources"] == [
        {
            "configMap": {
                "name": "corp-ca-bundle",
                "items": [{"key": "ca-bundle.pem", "path": "ca-bundle.pem"}],
            }
        }
    ]
    data = _kind(manifests, "ConfigMap")["data"]
    assert data["KAFKA_SSL_CA_LOCATION"] == "/etc/personalize-consumer/kafka-tls/ca-bundle.pem"
    assert "KAFKA_SSL_CERTIFICATE_LOCATION" not in data


def test_custom_avro_schema_mounted_from_configmap(rendered_sets: dict[str, Rendered]) -> None:
    rendered = rendered_sets["keda"]
    schemas = rendered.named("ConfigMap", f"{RELEASE}-personalize-consumer-schemas")
    assert schemas is not None
    schema = json.loads(schemas["data"]["interaction.avsc"])
    fastavro.parse_schema(schema)  # a valid Avro schema, not just JSON
    assert schema["name"] == "Interaction"
    mount_path = rendered.values["schemas"]["mountPath"]
    mounts = {m["name"]: m for m in rendered.container["volumeMounts"]}
    volumes = {v["name"]: v for v in rendered.pod_spec["volumes"]}
    (name,) = [n for n, m in mounts.items() if m["mountPath"] == mount_path]
    assert volumes[name]["configMap"]["name"] == schemas["metadata"]["name"]
    assert rendered.effective_env()["AVRO_SCHEMA_FILE"] == f"{mount_path}/interaction.avsc"


# ------------------------------------------------------------------------------ AWS identity


def test_irsa_annotation_on_the_pods_service_account(rendered_sets: dict[str, Rendered]) -> None:
    rendered = rendered_sets["msk-iam"]
    account = rendered.one("ServiceAccount")
    assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == (
        "arn:aws:iam::123456789012:role/personalize-consumer"
    )
    assert rendered.pod_spec["serviceAccountName"] == account["metadata"]["name"]
    plain = rendered_sets["required"].one("ServiceAccount")
    assert "annotations" not in plain["metadata"]


def test_irsa_needs_a_created_service_account(helm: str) -> None:
    error = helm_fails(
        helm,
        "serviceAccount.create=false",
        "serviceAccount.irsaRoleArn=arn:aws:iam::123456789012:role/x",
    )
    assert "serviceAccount.irsaRoleArn needs serviceAccount.create=true" in error


# ---------------------------------------------------------------------------------- shutdown


@pytest.mark.parametrize("name", VALUE_SETS)
def test_grace_period_outlasts_the_drain(rendered_sets: dict[str, Rendered], name: str) -> None:
    rendered = rendered_sets[name]
    grace = rendered.pod_spec["terminationGracePeriodSeconds"]
    shutdown = float(rendered.effective_env()["SHUTDOWN_TIMEOUT_S"])
    assert grace > shutdown
    explicit = rendered.values["terminationGracePeriodSeconds"]
    assert grace == (explicit if explicit is not None else math.ceil(shutdown) + 15)


def test_grace_period_shorter_than_the_drain_is_refused(helm: str) -> None:
    error = helm_fails(helm, "terminationGracePeriodSeconds=30")
    assert "terminationGracePeriodSeconds (30) must be above config.shutdownTimeoutS (30)" in error


def test_drain_longer_than_half_the_poll_interval_is_refused(helm: str) -> None:
    error = helm_fails(helm, "config.shutdownTimeoutS=200")
    assert "config.shutdownTimeoutS (200) must be at most half of config.maxPollIntervalMs" in error


def test_pod_disruption_budget(rendered_sets: dict[str, Rendered]) -> None:
    default = rendered_sets["required"].one("PodDisruptionBudget")["spec"]
    assert default["maxUnavailable"] == 1 and "minAvailable" not in default
    by_min = rendered_sets["hpa"].one("PodDisruptionBudget")["spec"]
    assert by_min["minAvailable"] == 1 and "maxUnavailable" not in by_min


# ------------------------------------------------------------------------------- autoscaling


def test_static_replicas_without_autoscaling(rendered_sets: dict[str, Rendered]) -> None:
    assert rendered_sets["required"].one("Deployment")["spec"]["replicas"] == 1


def test_hpa(rendered_sets: dict[str, Rendered]) -> None:
    rendered = rendered_sets["hpa"]
    deployment = rendered.one("Deployment")
    assert "replicas" not in deployment["spec"]  # the HPA owns it
    spec = rendered.one("HorizontalPodAutoscaler")["spec"]
    assert spec["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    assert deployment["metadata"]["name"] == "clickstream-to-personalize"
    assert (spec["minReplicas"], spec["maxReplicas"]) == (2, 8)  # max = partitionCount
    targets = {m["resource"]["name"]: m["resource"]["target"] for m in spec["metrics"]}
    assert targets["cpu"] == {"type": "Utilization", "averageUtilization": 60}
    assert targets["memory"] == {"type": "Utilization", "averageUtilization": 80}
    assert spec["behavior"]["scaleDown"]["policies"] == [
        {"type": "Pods", "value": 1, "periodSeconds": 60}
    ]


def test_keda_scaled_object_on_lag(rendered_sets: dict[str, Rendered]) -> None:
    rendered = rendered_sets["keda"]
    deployment = rendered.one("Deployment")
    assert "replicas" not in deployment["spec"]
    spec = rendered.one("ScaledObject")["spec"]
    assert spec["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (2, 12)
    assert spec["fallback"] == {"failureThreshold": 3, "replicas": 2}
    (trigger,) = spec["triggers"]
    env = rendered.effective_env()
    assert trigger["type"] == "kafka"
    meta = trigger["metadata"]
    assert meta["bootstrapServers"] == env["KAFKA_BOOTSTRAP_SERVERS"]
    assert meta["consumerGroup"] == env["KAFKA_GROUP_ID"]
    assert "topic" not in meta  # two source topics: the group's lag over all of them
    assert meta["lagThreshold"] == "5000"
    assert meta["offsetResetPolicy"] == env["KAFKA_AUTO_OFFSET_RESET"] == "latest"
    assert meta["allowIdleConsumers"] == "false"
    assert meta["excludePersistentLag"] == "true"
    assert not {"sasl", "tls"} & meta.keys()
    assert "authenticationRef" not in trigger
    assert rendered.maybe("TriggerAuthentication") is None


def test_keda_with_msk_iam_uses_the_workload_identity(rendered_sets: dict[str, Rendered]) -> None:
    rendered = rendered_sets["msk-iam"]
    (trigger,) = rendered.one("ScaledObject")["spec"]["triggers"]
    meta = trigger["metadata"]
    assert meta["topic"] == "clickstream"
    assert meta["sasl"] == "oauthbearer"
    assert meta["saslTokenProvider"] == "aws_msk_iam"
    assert meta["tls"] == "enable"
    assert meta["awsRegion"] == "eu-central-1"  # the cluster's, not the tracker's eu-west-1
    auth = rendered.one("TriggerAuthentication")
    assert trigger["authenticationRef"] == {"name": auth["metadata"]["name"]}
    assert auth["spec"] == {"podIdentity": {"provider": "aws", "identityOwner": "workload"}}
    assert rendered.one("ScaledObject")["spec"]["maxReplicaCount"] == 4


def test_keda_apache_kafka_trigger_with_msk_iam(helm: str) -> None:
    manifests = helm_renders(helm, "keda.triggerType=apache-kafka", files=("msk-iam",))
    (trigger,) = _kind(manifests, "ScaledObject")["spec"]["triggers"]
    assert trigger["type"] == "apache-kafka"
    assert trigger["metadata"]["sasl"] == "aws_msk_iam"
    assert "saslTokenProvider" not in trigger["metadata"]


def test_keda_with_scram_and_tls_reads_the_consumers_credentials(
    rendered_sets: dict[str, Rendered],
) -> None:
    rendered = rendered_sets["tls-scram"]
    (trigger,) = rendered.one("ScaledObject")["spec"]["triggers"]
    assert trigger["metadata"]["sasl"] == "scram_sha512"
    assert trigger["metadata"]["tls"] == "enable"
    spec = rendered.one("TriggerAuthentication")["spec"]
    params: dict[str, tuple[str, str, str]] = {}
    for kind, refs in (
        ("ConfigMap", spec["configMapTargetRef"]),
        ("Secret", spec["secretTargetRef"]),
    ):
        for ref in refs:
            params[ref["parameter"]] = (kind, ref["name"], ref["key"])
    assert set(params) == {"username", "password", "ca", "cert", "key"}
    for parameter in ("username", "password"):  # objects the chart renders: the key must exist
        kind, name, key = params[parameter]
        obj = rendered.named(kind, name)
        assert obj is not None, parameter
        data = obj["data"] if kind == "ConfigMap" else decode_secret(obj)
        assert key in data, parameter
    assert params["cert"] == ("Secret", "kafka-client-tls", "tls.crt")


def test_keda_and_hpa_are_mutually_exclusive(helm: str) -> None:
    error = helm_fails(
        helm,
        "autoscaling.enabled=true",
        "autoscaling.partitionCount=6",
        "keda.enabled=true",
        "keda.partitionCount=6",
    )
    assert (
        "autoscaling.enabled (HPA) and keda.enabled (KEDA ScaledObject) are mutually exclusive"
        in (error)
    )


@pytest.mark.parametrize(
    ("scaler", "maximum", "kind", "field"),
    [
        ("autoscaling", "maxReplicas", "HorizontalPodAutoscaler", "maxReplicas"),
        ("keda", "maxReplicaCount", "ScaledObject", "maxReplicaCount"),
    ],
)
def test_replicas_capped_by_partitions(
    helm: str, scaler: str, maximum: str, kind: str, field: str
) -> None:
    on = (f"{scaler}.enabled=true", f"{scaler}.partitionCount=6")
    # by default the maximum is the partition count
    assert _kind(helm_renders(helm, *on), kind)["spec"][field] == 6
    assert _kind(helm_renders(helm, *on, f"{scaler}.{maximum}=6"), kind)["spec"][field] == 6
    # above it: refused, naming both numbers and the way out
    error = helm_fails(helm, *on, f"{scaler}.{maximum}=7")
    assert f"{scaler}.{maximum} (7) exceeds {scaler}.partitionCount (6)" in error
    assert f"{scaler}.allowMoreReplicasThanPartitions=true" in error
    # unless allowed explicitly
    allowed = helm_renders(
        helm, *on, f"{scaler}.{maximum}=7", f"{scaler}.allowMoreReplicasThanPartitions=true"
    )
    assert _kind(allowed, kind)["spec"][field] == 7
    if scaler == "keda":
        (trigger,) = _kind(allowed, kind)["spec"]["triggers"]
        assert trigger["metadata"]["allowIdleConsumers"] == "true"
    # and the partition count is required
    assert f"{scaler}.partitionCount is required" in helm_fails(helm, f"{scaler}.enabled=true")


# ------------------------------------------------------------------------------ observability


def test_service_monitor_scrapes_the_metrics_service(rendered_sets: dict[str, Rendered]) -> None:
    rendered = rendered_sets["keda"]
    monitor = rendered.one("ServiceMonitor")
    service = rendered.one("Service")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert rendered_sets["required"].maybe("ServiceMonitor") is None


@pytest.mark.parametrize("name", VALUE_SETS)
def test_selectors_match_the_pods(rendered_sets: dict[str, Rendered], name: str) -> None:
    rendered = rendered_sets[name]
    deployment = rendered.one("Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"].items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels
    assert rendered.one("Service")["spec"]["selector"].items() <= pod_labels
    assert (
        rendered.one("PodDisruptionBudget")["spec"]["selector"]["matchLabels"].items() <= pod_labels
    )


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
            "schemas.file is required unless schemas.files holds exactly one file",
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
