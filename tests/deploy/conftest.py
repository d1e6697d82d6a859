"""Fixtures for the deployment tests: a helm binary and rendered manifests of the chart.

helm comes from ``scripts/helm.sh`` (helm on PATH, else a cached build, else ``go install``). When
there is none the chart tests skip saying why, or fail when ``CI`` or ``REQUIRE_HELM=1`` is set.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.deploy.support import HELM_BUILD_TIMEOUT_S, HELM_SCRIPT, Rendered, render


def _helm_required() -> bool:
    return bool(os.environ.get("CI")) or os.environ.get("REQUIRE_HELM") == "1"


@pytest.fixture(scope="session")
def helm() -> str:
    """Path of a helm binary, or skip (fail under CI / REQUIRE_HELM=1) when none can be had."""
    try:
        result = subprocess.run(
            ["bash", str(HELM_SCRIPT)],
            capture_output=True,
            text=True,
            timeout=HELM_BUILD_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        reason = f"scripts/helm.sh did not run: {exc}"
    else:
        path = result.stdout.strip()
        if result.returncode == 0 and path and os.access(path, os.X_OK):
            return path
        tail = result.stderr.strip().splitlines()[-5:]
        reason = f"scripts/helm.sh exited {result.returncode}: " + " | ".join(tail)
    message = f"no helm for the chart tests ({reason}); put helm on PATH or install Go"
    if _helm_required():
        pytest.fail(f"{message} (CI or REQUIRE_HELM=1)", pytrace=False)
    pytest.skip(message)


class _RenderCache(dict[str, Rendered]):
    def __init__(self, helm: str) -> None:
        super().__init__()
        self._helm = helm

    def __missing__(self, name: str) -> Rendered:
        self[name] = render(self._helm, name)
        return self[name]


@pytest.fixture(scope="session")
def rendered_sets(helm: str) -> dict[str, Rendered]:
    """Each value set under tests/deploy/values/ (by file stem), rendered once, on first use."""
    return _RenderCache(helm)
