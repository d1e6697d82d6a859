"""`personalize-consumer replay`: after a fix, what now maps is sent under its original eventId,
the rest stays on the dead-letter topic, and progress is committed so a replay resumes."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from consumer.mapping import derived_event_id
from consumer.testing.emulator import EmulatorServer
from consumer.testing.samples import InteractionEncoder, interaction
from tests.integration.processes import run_on_terminal
from tests.integration.support import (
    accepted_events,
    committed,
    end_offsets,
    read_all,
    write_clickstream,
)


def run(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "consumer", command, "--until-caught-up"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def test_replay_sends_what_now_maps_under_the_original_event_id(
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    emulator: EmulatorServer,
    events_file: Path,
) -> None:
    topic, dead_letter = new_topic(partitions=2), new_topic()
    encoder = InteractionEncoder()
    poison = interaction(0, 7, datetime.now(UTC), random.Random(3)) | {"eventType": "Poison"}
    bad = {5: encoder.encode(poison), 8: encoder.encode(poison), 13: b"\x02\xff not avro"}
    stream, _ = write_clickstream(kafka_bootstrap, topic, 2, 40, extra=bad)
    env = os.environ | {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KAFKA_GROUP_ID": "g-replay",
        "SOURCE_TOPICS": topic,
        "DEAD_LETTER_TOPIC": dead_letter,
        "PERSONALIZE_TRACKING_ID": "tracker-it",
        "AWS_REGION": "us-east-1",
        "METRICS_PORT": "0",
    }
    emulator.set_faults(reject_event_types=["Poison"])  # a rule the service enforces today
    run("run", env)
    assert len(read_all(kafka_bootstrap, dead_letter)) == 3

    emulator.set_faults(reject_event_types=[])  # ... and no longer, after the fix
    command = [sys.executable, "-m", "consumer", "replay", "--until-caught-up"]
    first = run_on_terminal(command, env, timeout_s=180)  # as a person runs it, watching
    assert first.returncode == 0, first.terminal[-2000:]
    assert "sent=2" in first.stdout and "still_failing=1" in first.stdout
    assert "replay: 100%" in first.terminal and "3/3" in first.terminal  # done, of what was left
    said = [json.loads(line)["msg"] for line in first.stdout.splitlines()[:-1]]
    assert "still failing; left on the dead-letter topic" in said
    assert "record dead-lettered" not in said  # it stays where it is; nothing is produced

    emulator.flush()
    arrived = [e["eventId"] for e in accepted_events(events_file)]
    poisoned = {derived_event_id(topic, i % 2, i // 2) for i in (5, 8)}
    assert poisoned <= set(arrived)  # under the eventId the original send would have used
    assert set(arrived) == stream.expected_ids({13})
    assert len(read_all(kafka_bootstrap, dead_letter)) == 3  # nothing dead-lettered twice
    assert committed(kafka_bootstrap, "g-replay.replay", dead_letter, 1) == end_offsets(
        kafka_bootstrap, dead_letter, 1
    )

    again = run("replay", env)  # resumes after its committed progress: nothing left to send
    assert "sent=0" in again.stdout
    assert "records/s" not in again.stderr  # no bar where no one watches
