"""Start-up checks that need the broker: a dead-letter topic that isn't there stops the consumer."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable


def test_missing_dead_letter_topic_stops_start_up_naming_it(
    kafka_bootstrap: str, new_topic: Callable[..., str]
) -> None:
    missing = f"no-such-dead-letter-{uuid.uuid4().hex[:8]}"
    env = os.environ | {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "SOURCE_TOPICS": new_topic(),
        "DEAD_LETTER_TOPIC": missing,
        "PERSONALIZE_TRACKING_ID": "tracker-it",
        "AWS_REGION": "us-east-1",
    }
    done = subprocess.run(
        [sys.executable, "-m", "consumer", "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 3
    assert "DEAD_LETTER_TOPIC" in done.stderr and missing in done.stderr


def test_a_cluster_that_cannot_be_reached_stops_start_up_naming_it_in_a_few_log_lines() -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        nowhere = f"127.0.0.1:{s.getsockname()[1]}"
    env = os.environ | {
        "KAFKA_BOOTSTRAP_SERVERS": nowhere,
        "SOURCE_TOPICS": "clicks",
        "DEAD_LETTER_TOPIC": "clicks.dead-letter",
        "PERSONALIZE_TRACKING_ID": "tracker-it",
        "AWS_REGION": "us-east-1",
        "KAFKA_STARTUP_TIMEOUT_S": "6",
        "METRICS_PORT": "0",
    }
    done = subprocess.run(
        [sys.executable, "-m", "consumer", "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 3
    last = done.stderr.strip().splitlines()[-1]
    assert f"cannot reach Kafka at {nowhere} within 6 s" in last
    assert "Connection refused" in last and "DEAD_LETTER_TOPIC" not in last
    # a reconnect every few hundred ms for 6 s: each kind of line once, not hundreds
    assert len(done.stdout.splitlines()) < 10, done.stdout[-3000:]
