"""Shared by the chart tests: the value sets under values/, the chart's own ci/*-values.yaml, and
helpers that render the chart with extra --set values, expecting success or failure, and check
that what it renders are valid objects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.deploy.crds import is_custom, validate_custom
from tests.deploy.support import CHART, NAMESPACE, RELEASE, run_helm, template

VALUE_SETS = ("required", "keda", "msk-iam", "hpa", "tls-scram", "registry")
CI_DIR = CHART / "ci"
#: The chart's kubeVersion floor and a recent release.
K8S_VERSIONS = ("1.29.0", "1.37.0")


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


def ci_values_files() -> list[Path]:
    """The chart's ci/*-values.yaml, as chart-testing (`ct lint`, `ct install`) picks them."""
    return sorted(CI_DIR.glob("*-values.yaml"))


def ci_files_with_rules() -> list[Path]:
    """The ci values files that turn the PrometheusRule on."""
    return [
        path
        for path in ci_values_files()
        if (yaml.safe_load(path.read_text()).get("prometheusRule") or {}).get("enabled")
    ]


def render_ci(helm: str, path: Path, *sets: str) -> list[Any]:
    """`helm template` of the chart with one of its ci values files."""
    args = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE, "--values", str(path)]
    for item in sets:
        args += ["--set", item]
    result = run_helm(helm, *args)
    assert result.returncode == 0, f"helm template with {path.name} failed:\n{result.stderr}"
    return [m for m in yaml.safe_load_all(result.stdout) if m]


def assert_valid_objects(
    manifests: list[Any], version: str, where: str, namespaces: frozenset[str] = frozenset()
) -> None:
    """Every manifest a valid object for Kubernetes `version` (CRDs: the schemas of crds.py), in
    the release's namespace or one of `namespaces` (those the values named)."""
    assert manifests, f"{where}: nothing rendered"
    for manifest in manifests:
        what = f"{where}: {manifest['kind']}/{manifest['metadata']['name']}"
        assert manifest["metadata"].get("namespace") in {NAMESPACE, *namespaces}, what
        if is_custom(manifest):
            validate_custom(manifest)
            continue
        try:
            kubernetes_validate.validate(manifest, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = "/".join(str(p) for p in exc.path)
            pytest.fail(f"{what} invalid for Kubernetes {version} at {path}: {exc.message}")
