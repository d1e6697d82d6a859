"""The built wheel: every package of the tree is in it, and an installed copy finds its default
schema and mapping without the repository (no symlinks, no working directory tricks)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    subprocess.run([*command, "-q", "-w", str(out), str(ROOT)], check=True, cwd=out)
    (built,) = out.glob("personalize_consumer-*.whl")
    return built


def test_the_wheel_holds_every_module_and_the_shipped_schemas(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "consumer").rglob("*.py")}
    assert modules <= names, f"packages missing from pyproject.toml: {sorted(modules - names)}"
    schemas = {
        "consumer/schemas/" + p.relative_to(ROOT / "schemas").as_posix()
        for p in (ROOT / "schemas").rglob("*")
        if p.suffix in (".avsc", ".yaml")
    }
    assert "consumer/schemas/interaction.mapping.yaml" in schemas
    assert schemas <= names


def test_an_installed_wheel_finds_its_default_schema_and_mapping(
    wheel: Path, tmp_path: Path
) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), wheel],
        check=True,
    )
    probe = (
        "import consumer; "
        "print(consumer.DEFAULT_SCHEMA_FILE.is_file(), consumer.DEFAULT_MAPPING_FILE.is_file()); "
        "print(consumer.SCHEMAS_DIR)"
    )
    done = subprocess.run(
        [sys.executable, "-P", "-c", probe],
        env={"PYTHONPATH": str(target)},
        cwd=tmp_path,  # nowhere near the repository
        capture_output=True,
        text=True,
        check=True,
    )
    found, where = done.stdout.splitlines()
    assert found == "True True"
    assert Path(where) == (target / "consumer" / "schemas").resolve()
