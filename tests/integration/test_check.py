"""`personalize-consumer check`: a dry run over a real topic, no commits, no AWS calls."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

from consumer.testing.emulator import EmulatorServer
from consumer.testing.samples import InteractionEncoder, bad_records
from tests.integration.processes import run_on_terminal
from tests.integration.support import committed, write_clickstream


def test_check_reports_outcomes_and_reasons_and_masks_values(
    kafka_bootstrap: str, new_topic: Callable[..., str], emulator: EmulatorServer
) -> None:
    topic, dead_letter = new_topic(partitions=2), new_topic()
    bad = {10 + n: b.value for n, b in enumerate(bad_records(InteractionEncoder()))}
    stream, _ = write_clickstream(kafka_bootstrap, topic, 2, 60, extra=bad)
    env = os.environ | {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KAFKA_GROUP_ID": "g-check",
        "SOURCE_TOPICS": topic,
        "DEAD_LETTER_TOPIC": dead_letter,
        "PERSONALIZE_TRACKING_ID": "tracker-it",
        "AWS_REGION": "us-east-1",
    }
    done = subprocess.run(
        [sys.executable, "-m", "consumer", "check", "--records", "100"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "read 60 records" in out
    assert "would send: 56" in out
    assert "dead-letter (decode): 2" in out and "dead-letter (validate): 2" in out
    assert "eventType: must be at most 256 character(s) long" in out
    assert "mapped examples:" in out and '"userId": "***"' in out
    assert not any(v["userId"] in out for v in stream.values)  # masked unless --show-values
    assert emulator.stats()["requests"] == 0
    assert all(o < 0 for o in committed(kafka_bootstrap, "g-check", topic, 2).values())
    assert "records/s" not in done.stderr  # no progress bar where no one watches

    watched = run_on_terminal(
        [sys.executable, "-m", "consumer", "check", "--records", "50"], env, timeout_s=120
    )
    assert watched.returncode == 0, watched.terminal[-2000:]
    assert "read 50 records" in watched.stdout
    # On a terminal: records done of what there is to read, and the rate.
    assert f"check {topic}: 100%" in watched.terminal and "50/50" in watched.terminal
    assert "records/s" in watched.terminal
