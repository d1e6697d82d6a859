"""The first end-to-end path against a real broker and the local PutEvents endpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from consumer.deadletter.headers import H_OFFSET, H_PARTITION, H_REASON, H_STAGE, H_TOPIC
from consumer.testing.emulator import EmulatorServer
from consumer.testing.samples import InteractionEncoder, bad_records
from tests.integration.support import (
    accepted_events,
    committed,
    end_offsets,
    read_all,
    run_until_caught_up,
    running,
    settings_for,
    wait_for,
    write_clickstream,
)


def flushed(emulator: EmulatorServer, events_file: Path) -> list[dict[str, object]]:
    emulator.flush()
    return accepted_events(events_file)


def test_valid_records_arrive_once_with_their_values_and_offsets_reach_the_end(
    kafka_bootstrap: str, new_topic: Callable[..., str], emulator: EmulatorServer, events_file: Path
) -> None:
    topic, dead_letter = new_topic(partitions=4), new_topic()
    stream, _ = write_clickstream(kafka_bootstrap, topic, 4, 5000)

    summary = run_until_caught_up(settings_for(kafka_bootstrap, topic, dead_letter, "g-valid"))

    events = flushed(emulator, events_file)
    by_id = {e["eventId"]: e for e in events}
    assert len(events) == 5000 and set(by_id) == stream.expected_ids()
    for index in (0, 1, 2, 3, 1234, 4999):
        sent, value = by_id[stream.event_id(index)], stream.values[index]
        assert sent["trackingId"] == "tracker-it"
        assert (sent["userId"], sent["sessionId"]) == (value["userId"], value["sessionId"])
        assert sent["eventType"] == value["eventType"]
        assert sent["itemId"] == value["itemId"]
        assert sent["sentAt"] == pytest.approx(value["sentAt"].timestamp(), abs=1)
        assert sent.get("eventValue") == value["eventValue"]
        assert sent.get("impression", []) == value["impression"]
        assert json.loads(str(sent["properties"])) == value["properties"]
    assert summary.sent_events == 5000 and not summary.dead_lettered
    assert committed(kafka_bootstrap, "g-valid", topic, 4) == end_offsets(kafka_bootstrap, topic, 4)


def test_bad_records_are_dead_lettered_with_original_bytes_and_context(
    kafka_bootstrap: str, new_topic: Callable[..., str], emulator: EmulatorServer, events_file: Path
) -> None:
    topic, dead_letter = new_topic(partitions=2), new_topic()
    bad_ones = {n * 50 + 7: b for n, b in enumerate(bad_records(InteractionEncoder()))}
    bad = {index: b.value for index, b in bad_ones.items()}
    stream, raw = write_clickstream(kafka_bootstrap, topic, 2, 300, extra=bad)

    summary = run_until_caught_up(settings_for(kafka_bootstrap, topic, dead_letter, "g-bad"))

    assert {e["eventId"] for e in flushed(emulator, events_file)} == stream.expected_ids(set(bad))
    letters = read_all(kafka_bootstrap, dead_letter)
    assert len(letters) == len(bad) == sum(summary.dead_lettered.values())
    for message in letters:
        headers = dict(message.headers() or [])
        index = int(headers[H_OFFSET] or b"") * 2 + int(headers[H_PARTITION] or b"")
        assert index in bad
        assert message.value() == raw[index] or (message.value() is None and raw[index] == b"")
        assert message.key() == f"k{index}".encode()
        assert headers["source"] == b"sample"  # the record's own header survives
        assert headers[H_TOPIC] == topic.encode()
        assert headers[H_STAGE] == bad_ones[index].stage.encode()
        assert headers[H_REASON]
    assert committed(kafka_bootstrap, "g-bad", topic, 2) == end_offsets(kafka_bootstrap, topic, 2)


def test_endpoint_outage_commits_nothing_unsent_and_everything_arrives_after(
    kafka_bootstrap: str, new_topic: Callable[..., str], emulator: EmulatorServer, events_file: Path
) -> None:
    topic, dead_letter = new_topic(partitions=2), new_topic()
    stream, _ = write_clickstream(kafka_bootstrap, topic, 2, 400)
    emulator.set_faults(outage=True)

    with running(settings_for(kafka_bootstrap, topic, dead_letter, "g-outage")) as (pipeline, _):
        wait_for(
            lambda: emulator.stats()["outage_refusals"] >= 3, 60, "calls refused by the outage"
        )
        assert all(o < 0 for o in committed(kafka_bootstrap, "g-outage", topic, 2).values())
        emulator.set_faults(outage=False)
        ends = end_offsets(kafka_bootstrap, topic, 2)
        wait_for(
            lambda: committed(kafka_bootstrap, "g-outage", topic, 2) == ends,
            120,
            "every offset committed after the outage",
        )

    assert {e["eventId"] for e in flushed(emulator, events_file)} == stream.expected_ids()
    assert not pipeline.summary.dead_lettered


def test_sigkill_mid_stream_then_restart_delivers_every_record(
    kafka_bootstrap: str, new_topic: Callable[..., str], emulator: EmulatorServer, events_file: Path
) -> None:
    topic, dead_letter = new_topic(partitions=4), new_topic()
    stream, _ = write_clickstream(kafka_bootstrap, topic, 4, 4000)
    emulator.set_faults(latency_ms=5)  # slow enough to be killed mid-stream
    env = os.environ | {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KAFKA_GROUP_ID": "g-kill",
        "SOURCE_TOPICS": topic,
        "DEAD_LETTER_TOPIC": dead_letter,
        "PERSONALIZE_TRACKING_ID": "tracker-it",
        "AWS_REGION": "us-east-1",
        "CONSUME_BATCH_SIZE": "100",
        "METRICS_PORT": "0",
        "KAFKA_SESSION_TIMEOUT_MS": "6000",  # the killed member's partitions come back sooner
    }
    command = [sys.executable, "-m", "consumer", "run", "--until-caught-up"]

    first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_for(lambda: emulator.stats()["accepted_events"] >= 1000, 120, "a quarter sent")
    first.send_signal(signal.SIGKILL)
    first.wait(30)
    killed_at = emulator.stats()["accepted_events"]
    assert killed_at < 4000, "the consumer finished before it could be killed"

    emulator.set_faults(latency_ms=0)
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-2000:]

    arrived = {e["eventId"] for e in flushed(emulator, events_file)}
    assert arrived == stream.expected_ids()
    assert committed(kafka_bootstrap, "g-kill", topic, 4) == end_offsets(kafka_bootstrap, topic, 4)
