"""Autoscaling in the chart: static replicas, the HPA, KEDA's ScaledObject on consumer lag with
its authentication, HPA and KEDA excluding each other, and replicas capped by partitions."""

from __future__ import annotations

import pytest

from tests.deploy.chart_support import _kind, helm_fails, helm_renders
from tests.deploy.support import (
    Rendered,
    decode_secret,
)

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
