"""Shared by the chart tests: the value sets under values/ and helpers that render the chart
with extra --set values, expecting success or failure."""

from __future__ import annotations

from typing import Any

import yaml

from tests.deploy.support import template

VALUE_SETS = ("required", "keda", "msk-iam", "hpa", "tls-scram")


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
