"""Everything here needs a real broker: marked so that `-m "not integration"` leaves it out.

Also the fixtures the end-to-end files share: the local PutEvents endpoint and its events file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from consumer.testing.emulator import EmulatorConfig, EmulatorServer
from tests.integration.processes import Consumers

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:  # this hook sees the whole session's items, not only ours
        if _HERE in item.path.parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def events_file(tmp_path: Path) -> Path:
    """Where the emulator appends accepted events (read it with `support.accepted_events`)."""
    return tmp_path / "events.jsonl"


@pytest.fixture
def emulator(events_file: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatorServer]:
    """The PutEvents endpoint, and this process's boto3 pointed at it with dummy credentials."""
    server = EmulatorServer(EmulatorConfig(events_file=events_file))
    server.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_PERSONALIZE_EVENTS", server.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    yield server
    server.stop()


@pytest.fixture
def consumers(tmp_path: Path) -> Iterator[Consumers]:
    """`consumer run` processes for this test, killed if still running at the end."""
    started = Consumers(tmp_path)
    yield started
    started.close()
