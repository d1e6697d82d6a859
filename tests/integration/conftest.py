"""Everything here needs a real broker: marked so that `-m "not integration"` leaves it out."""

from __future__ import annotations

from pathlib import Path

import pytest

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:  # this hook sees the whole session's items, not only ours
        if _HERE in item.path.parents:
            item.add_marker(pytest.mark.integration)
