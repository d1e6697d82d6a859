"""Rendering the Helm chart offline for the deployment tests: helm invocations and look-ups."""

from __future__ import annotations

import base64
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "personalize-consumer"
VALUES_DIR = Path(__file__).resolve().parent / "values"
HELM_SCRIPT = REPO / "scripts" / "helm.sh"
RELEASE = "rel"
NAMESPACE = "streaming"

#: Building helm from source takes about three minutes on 2 cores, once per machine.
HELM_BUILD_TIMEOUT_S = 1800
HELM_TIMEOUT_S = 120

Manifest = dict[str, Any]


@dataclass(frozen=True)
class HelmResult:
    returncode: int
    stdout: str
    stderr: str


def run_helm(helm: str, *args: str) -> HelmResult:
    result = subprocess.run(
        [helm, *args],
        capture_output=True,
        text=True,
        timeout=HELM_TIMEOUT_S,
        check=False,
    )
    return HelmResult(result.returncode, result.stdout, result.stderr)


def values_args(values_files: tuple[str, ...], sets: tuple[str, ...]) -> list[str]:
    args: list[str] = []
    for name in values_files:
        args += ["--values", str(VALUES_DIR / f"{name}.yaml")]
    for item in sets:
        args += ["--set", item]
    return args


def template(helm: str, values_files: tuple[str, ...], sets: tuple[str, ...] = ()) -> HelmResult:
    return run_helm(
        helm,
        "template",
        RELEASE,
        str(CHART),
        "--namespace",
        NAMESPACE,
        *values_args(values_files, sets),
    )


@dataclass(frozen=True)
class Rendered:
    """The manifests of one `helm template`, with the look-ups the tests need."""

    name: str
    values: dict[str, Any]
    manifests: list[Manifest]

    def all(self, kind: str) -> list[Manifest]:
        return [m for m in self.manifests if m["kind"] == kind]

    def one(self, kind: str) -> Manifest:
        found = self.all(kind)
        assert len(found) == 1, f"{self.name}: expected one {kind}, got {len(found)}"
        return found[0]

    def maybe(self, kind: str) -> Manifest | None:
        found = self.all(kind)
        assert len(found) <= 1, f"{self.name}: more than one {kind}"
        return found[0] if found else None

    def named(self, kind: str, name: str) -> Manifest | None:
        for m in self.all(kind):
            if m["metadata"]["name"] == name:
                return m
        return None

    @property
    def pod_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = self.one("Deployment")["spec"]["template"]["spec"]
        return spec

    @property
    def container(self) -> dict[str, Any]:
        containers = self.pod_spec["containers"]
        assert [c["name"] for c in containers] == ["consumer"]
        container: dict[str, Any] = containers[0]
        return container

    def effective_env(self) -> dict[str, str]:
        """The container's environment as Kubernetes builds it from envFrom then env.

        Variables from a Secret or ConfigMap the chart does not render (existingSecret, extra
        envFrom) cannot be known here and are left out.
        """
        env: dict[str, str] = {}
        for source in self.container.get("envFrom", []):
            if "configMapRef" in source:
                cm = self.named("ConfigMap", source["configMapRef"]["name"])
                if cm is not None:
                    env.update(cm.get("data", {}))
            if "secretRef" in source:
                secret = self.named("Secret", source["secretRef"]["name"])
                if secret is not None:
                    env.update(decode_secret(secret))
        for var in self.container.get("env", []):
            if "value" in var:
                env[var["name"]] = var["value"]
        return env


def decode_secret(secret: Manifest) -> dict[str, str]:
    decoded = {k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()}
    decoded.update(secret.get("stringData", {}))
    return decoded


def load_values(values_files: tuple[str, ...]) -> dict[str, Any]:
    """The chart's defaults overlaid with the given files (a deep merge, like helm's)."""
    merged: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    for name in values_files:
        _merge(merged, yaml.safe_load((VALUES_DIR / f"{name}.yaml").read_text()) or {})
    return merged


def _merge(base: dict[str, Any], overlay: dict[str, Any]) -> None:
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


def render(helm: str, name: str, sets: tuple[str, ...] = ()) -> Rendered:
    files = (name,)
    result = template(helm, files, sets)
    assert result.returncode == 0, f"helm template {name} failed:\n{result.stderr}"
    manifests = [m for m in yaml.safe_load_all(result.stdout) if m]
    return Rendered(name=name, values=load_values(files), manifests=manifests)
