"""The Dockerfile, parsed (no Docker engine here): multi-stage on python:3.11-slim, non-root at run
time, the metrics port exposed, and a build context that holds what it copies."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
CHART_VALUES = REPO / "helm" / "personalize-consumer" / "values.yaml"


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def _instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction, continuation lines joined, comments dropped."""
    logical: list[str] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    assert not current, "Dockerfile ends inside a continued line"
    result = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        result.append((keyword.upper(), args.strip()))
    return result


def _stages(text: str) -> tuple[dict[str, str], list[Stage]]:
    build_args: dict[str, str] = {}
    stages: list[Stage] = []
    for keyword, args in _instructions(text):
        if keyword == "ARG" and not stages:
            name, _, default = args.partition("=")
            build_args[name] = default
        elif keyword == "FROM":
            match = re.fullmatch(r"(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", args, re.I)
            assert match, args
            base = re.sub(r"\$\{(\w+)\}", lambda m: build_args[m.group(1)], match.group(1))
            stages.append(Stage(base=base, name=match.group(2)))
        else:
            assert stages, f"{keyword} before FROM"
            stages[-1].instructions.append((keyword, args))
    return build_args, stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return _stages(DOCKERFILE.read_text())[1]


def test_multi_stage_on_python_slim(stages: list[Stage]) -> None:
    assert len(stages) >= 2
    assert all(s.base == "python:3.11-slim" for s in stages)
    build_names = {s.name for s in stages[:-1]}
    final = stages[-1]
    copied_from = [re.search(r"--from=(\S+)", a) for a in final.all("COPY")]
    assert {m.group(1) for m in copied_from if m} <= build_names
    assert any(copied_from), "the final stage copies nothing from a build stage"
    # the runtime stage installs nothing with pip: it copies the built virtualenv
    assert not any("pip install" in run for run in final.all("RUN"))


def test_runs_as_non_root_uid_10001(stages: list[Stage]) -> None:
    final = stages[-1]
    users = final.all("USER")
    assert users, "the final stage sets no USER: it would run as root"
    user = users[-1].split(":")[0]
    assert user == "10001"
    # nothing after USER switches back or needs root
    after = final.instructions[[kw for kw, _ in final.instructions].index("USER") :]
    assert [kw for kw, _ in after if kw == "RUN"] == []


def test_matches_the_chart_security_context() -> None:
    values = yaml.safe_load(CHART_VALUES.read_text())
    _, stages = _stages(DOCKERFILE.read_text())
    uid, _, gid = stages[-1].all("USER")[-1].partition(":")
    assert int(uid) == values["securityContext"]["runAsUser"]
    assert int(gid) == values["securityContext"]["runAsGroup"]


def test_exposes_the_metrics_port(stages: list[Stage]) -> None:
    values = yaml.safe_load(CHART_VALUES.read_text())
    exposed = {p.split("/")[0] for e in stages[-1].all("EXPOSE") for p in e.split()}
    assert str(values["config"]["metricsPort"]) in exposed


def test_read_only_root_filesystem_friendly(stages: list[Stage]) -> None:
    final = stages[-1]
    env = " ".join(final.all("ENV"))
    assert "PYTHONDONTWRITEBYTECODE=1" in env  # no __pycache__ writes at run time
    assert not final.all("VOLUME")  # /tmp comes from the orchestrator (tmpfs / emptyDir)
    entrypoint = final.all("ENTRYPOINT")[-1]
    assert entrypoint == '["personalize-consumer"]'
    assert final.all("CMD")[-1] == '["run"]'


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; `!` re-includes."""
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.removeprefix("!").rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatchcase(p, pattern) for p in prefixes) or (
            pattern.startswith("**/") and fnmatch.fnmatchcase(parts[-1], pattern[3:])
        ):
            ignored = not negate
    return ignored


def test_build_context_has_what_is_copied_and_not_more(stages: list[Stage]) -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    sources: list[str] = []
    for stage in stages:
        for args in stage.all("COPY"):
            if "--from=" in args:
                continue
            sources += args.split()[:-1]
    assert sources
    for source in sources:
        assert (REPO / source).exists(), source
        assert not _ignored(source, patterns), f"{source} is copied but .dockerignore drops it"
    for unwanted in (
        ".git/config",
        ".venv/bin/python",
        "tests/conftest.py",
        "consumer/__pycache__/x.pyc",
    ):
        assert _ignored(unwanted, patterns), unwanted
