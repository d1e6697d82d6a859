"""Fixtures for the emulator tests: an emulator (seeded) writing to a temporary events file, and
a boto3 client pointed at it; the same emulator over HTTPS, with one CA for the whole session
(openssl takes about a second to make one)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from consumer.testing.emulator import EmulatorConfig, EmulatorServer
from tests.testing.emulator.server_support import make_client


@pytest.fixture
def events_path(tmp_path: Path) -> Path:
    return tmp_path / "events.jsonl"


@pytest.fixture
def server(events_path: Path) -> Iterator[EmulatorServer]:
    with EmulatorServer(EmulatorConfig(events_file=events_path, seed=7)) as emulator:
        yield emulator


@pytest.fixture
def client(server: EmulatorServer) -> Any:
    return make_client(server.url)


@pytest.fixture(scope="session")
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("emulator-tls")


@pytest.fixture
def tls_server(events_path: Path, tls_dir: Path) -> Iterator[EmulatorServer]:
    config = EmulatorConfig(events_file=events_path, seed=7, tls=True, tls_dir=tls_dir)
    with EmulatorServer(config) as emulator:
        yield emulator
