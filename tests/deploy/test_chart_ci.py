"""The chart's own ci/*-values.yaml, the files chart-testing (`ct lint`, `ct install`) and
`helm lint` take: each lints strictly and renders valid objects, and together they exercise every
optional feature."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.chart_support import (
    CI_DIR,
    K8S_VERSIONS,
    assert_valid_objects,
    ci_values_files,
    render_ci,
)
from tests.deploy.support import CHART, run_helm

CI_FILES = ci_values_files()


def _values(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def _namespaces(values: dict[str, Any]) -> frozenset[str]:
    keys = ("serviceMonitor", "dashboard", "prometheusRule", "deadLetterTopic")
    return frozenset(ns for k in keys if (ns := (values.get(k) or {}).get("namespace")))


def test_ci_files_are_there() -> None:
    names = [p.name for p in CI_FILES]
    assert "required-values.yaml" in names and len(names) >= 3, names
    # chart-testing only takes files named *-values.yaml; anything else there is a mistake
    assert sorted(p.name for p in CI_DIR.iterdir()) == sorted(names)


@pytest.mark.parametrize("path", CI_FILES, ids=lambda p: p.name)
def test_helm_lint(helm: str, path: Path) -> None:
    result = run_helm(helm, "lint", "--strict", str(CHART), "--values", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("path", CI_FILES, ids=lambda p: p.name)
def test_renders_valid_objects(helm: str, path: Path, version: str) -> None:
    manifests = render_ci(helm, path)
    assert_valid_objects(manifests, version, path.name, _namespaces(_values(path)))


def test_required_values_are_only_the_required_ones() -> None:
    values = _values(CI_DIR / "required-values.yaml")
    assert set(values) == {"config"}
    required = yaml.safe_load((CHART / "values.schema.json").read_text())
    assert set(values["config"]) == set(required["properties"]["config"]["required"])


def test_ci_files_exercise_every_optional_feature(helm: str) -> None:
    kinds: set[str] = set()
    env: set[str] = set()
    for path in CI_FILES:
        manifests = render_ci(helm, path)
        kinds |= {m["kind"] for m in manifests}
        for manifest in manifests:
            if manifest["kind"] == "ConfigMap":
                env |= set(manifest.get("data", {}))
    assert {
        "KafkaTopic",
        "PrometheusRule",
        "ServiceMonitor",
        "ScaledObject",
        "HorizontalPodAutoscaler",
        "Secret",
    } <= kinds
    assert {"mapping.yaml", "personalize-consumer.json"} <= env  # mapping and dashboard
    assert {"SCHEMA_REGISTRY_URL", "AVRO_READER_SCHEMA_FILE", "MAPPING_FILE"} <= env
    values = [_values(p) for p in CI_FILES]
    assert any((v.get("schemas") or {}).get("mapping") for v in values)
    assert any((v.get("schemas") or {}).get("files") for v in values)
    assert any((v.get("schemas") or {}).get("existingConfigMap") for v in values)
