"""Fixtures for the deployment tests: a helm binary and rendered manifests of the chart.

helm and promtool come from ``scripts/helm.sh`` and ``scripts/promtool.sh`` (on PATH, else a cached
build, else ``go install``). Without one their tests skip saying why, or fail under CI (``CI``, or
``REQUIRE_KAFKA=1`` as ``.ci/run`` sets) or with ``REQUIRE_HELM=1`` / ``REQUIRE_PROMTOOL=1``.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.deploy.promql import PROMTOOL_SCRIPT
from tests.deploy.support import HELM_BUILD_TIMEOUT_S, HELM_SCRIPT, Rendered, render

GO_BUILD_TIMEOUT_S = HELM_BUILD_TIMEOUT_S


def go_built_tool(script: Path, name: str, required_by: str) -> str:
    """The path `script` prints (a tool on PATH, cached, or built with Go), or skip saying why;
    fail instead under CI (`CI`, or `REQUIRE_KAFKA=1` as `.ci/run` sets) or `required_by=1`."""
    try:
        result = subprocess.run(
            ["bash", str(script)],
            capture_output=True,
            text=True,
            timeout=GO_BUILD_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        reason = f"scripts/{script.name} did not run: {exc}"
    else:
        path = result.stdout.strip()
        if result.returncode == 0 and path and os.access(path, os.X_OK):
            return path
        tail = result.stderr.strip().splitlines()[-5:]
        reason = f"scripts/{script.name} exited {result.returncode}: " + " | ".join(tail)
    message = f"no {name} for these tests ({reason}); put {name} on PATH or install Go"
    required = os.environ.get("CI") or os.environ.get("REQUIRE_KAFKA") == "1"
    if required or os.environ.get(required_by) == "1":
        pytest.fail(f"{message} (CI or {required_by}=1)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def helm() -> str:
    """Path of a helm binary (`scripts/helm.sh`)."""
    return go_built_tool(HELM_SCRIPT, "helm", "REQUIRE_HELM")


@pytest.fixture(scope="session")
def promtool() -> str:
    """Path of a promtool binary (`scripts/promtool.sh`), for the PromQL tests."""
    return go_built_tool(PROMTOOL_SCRIPT, "promtool", "REQUIRE_PROMTOOL")


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
