"""The consumer pod the chart renders: command, image, rollout, locked-down security context,
probes, scheduling, shutdown with time to drain, the disruption budget and the metrics service."""

from __future__ import annotations

import math

import pytest
import yaml

from tests.deploy.chart_support import VALUE_SETS, _kind, helm_fails, helm_renders
from tests.deploy.support import (
    CHART,
    NAMESPACE,
    RELEASE,
    Rendered,
)

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
