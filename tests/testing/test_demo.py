"""`personalize-consumer demo` as a newcomer runs it: what it prints is what they learn from."""

from __future__ import annotations

import re
import subprocess
import sys


def test_demo_lists_dead_letters_in_source_order_and_ends_with_the_next_steps() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "consumer", "demo", "--records", "400"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "sent:          400 events" in out
    assert "endpoint:      400 events accepted" in out
    assert "committed:     offsets 404 of 404 over 4 partitions" in out
    # The catalog beside it: every update sent but those a later one superseded in its call.
    catalog = re.search(r"(\d+) item updates \(200 on catalog.items: (\d+) superseded", out)
    assert catalog is not None and int(catalog[1]) + int(catalog[2]) == 200
    assert "1 tombstone skipped" in out and f"{catalog[1]} items by PutItems" in out
    assert "201 of 201 on catalog.items" in out

    listed = re.findall(r"^  - clickstream partition (\d+) offset (\d+): (\w+): (.*)$", out, re.M)
    assert len(listed) == 4
    where = [(int(p), int(o)) for p, o, _, _ in listed]
    assert where == sorted(where)
    reasons = [reason for *_, reason in listed]
    assert any("ends before the record does: it is cut short" in r for r in reasons)
    assert not any("Expected" in r for r in reasons)  # fastavro's misread length, not a reason

    assert "'clickstream.dead-letter'" in out
    assert "personalize-consumer check --dead-letter" in out
    assert "personalize-consumer replay --until-caught-up" in out
    assert "GETPID" not in out + done.stderr  # a fresh broker's coordinator load is not news
