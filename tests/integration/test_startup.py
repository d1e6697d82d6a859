"""Start-up checks that need the broker: a dead-letter topic that isn't there stops the consumer."""

from __future__ import annotations

import os
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
