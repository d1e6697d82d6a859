"""`personalize-consumer demo`: the whole path on this machine, nothing to configure.

Starts a local Kafka broker and the local PutEvents endpoint, writes a sample clickstream with a
few bad records, runs the consumer until it has caught up, and prints what happened.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from consumer.app import run
from consumer.config import load_settings
from consumer.deadletter.headers import H_OFFSET, H_REASON, H_STAGE
from consumer.ops.logs import configure_logging
from consumer.source.kafka import to_record
from consumer.testing.emulator import EmulatorConfig, EmulatorServer
from consumer.testing.localkafka import start_local_kafka
from consumer.testing.samples import (
    InteractionEncoder,
    bad_records,
    create_topics,
    interactions,
    produce,
)

TOPIC, DEAD_LETTER, PARTITIONS = "clickstream", "clickstream.dead-letter", 4


def run_demo(records: int = 2000) -> int:
    configure_logging("WARNING")
    with tempfile.TemporaryDirectory(prefix="personalize-demo-") as tmp:
        events_file = Path(tmp) / "accepted-events.jsonl"
        print("starting a local Kafka broker (the first run downloads its jars with Maven)...")
        with start_local_kafka() as kafka:
            emulator = EmulatorServer(EmulatorConfig(events_file=events_file))
            emulator.start()
            try:
                print(f"broker {kafka.bootstrap_servers}, PutEvents endpoint {emulator.url}")
                _write_sample(kafka.bootstrap_servers, records)
                os.environ.update(
                    AWS_ENDPOINT_URL_PERSONALIZE_EVENTS=emulator.url,
                    AWS_ACCESS_KEY_ID="demo",
                    AWS_SECRET_ACCESS_KEY="demo",
                )
                os.environ.pop("AWS_SESSION_TOKEN", None)
                settings = load_settings(
                    {
                        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
                        "KAFKA_GROUP_ID": "personalize-demo",
                        "SOURCE_TOPICS": TOPIC,
                        "DEAD_LETTER_TOPIC": DEAD_LETTER,
                        "PERSONALIZE_TRACKING_ID": "demo-tracker",
                        "AWS_REGION": "us-east-1",
                        "METRICS_PORT": "0",
                    }
                )
                print("running the consumer until it has caught up...")
                summary = run(settings, until_caught_up=True)
            finally:
                emulator.stop()
            stats = emulator.stats()
            print()
            print(f"sent:          {summary.sent_events} events in {summary.calls} PutEvents calls")
            print(f"endpoint:      {stats.get('accepted_events', 0)} events accepted")
            print(f"dead-lettered: {sum(summary.dead_lettered.values())} records")
            for offset, stage, reason in _dead_letters(kafka.bootstrap_servers):
                print(f"  - offset {offset}: {stage}: {reason}")
            committed = sum(summary.committed.values())
            print(
                f"committed:     offsets {committed} of {records + len(_bad())} "
                f"over {len(summary.committed)} partitions"
            )
    return 0


def _bad() -> list[bytes]:
    return [b.value for b in bad_records(InteractionEncoder())]


def _write_sample(bootstrap: str, count: int) -> None:
    encoder = InteractionEncoder()
    values = [encoder.encode(v) for v in interactions(count)]
    for n, bad in enumerate(_bad()):  # spread the bad ones through the stream
        values.insert((n + 1) * len(values) // 5, bad)
    create_topics(bootstrap, {TOPIC: PARTITIONS, DEAD_LETTER: 1})
    produce(bootstrap, TOPIC, values, PARTITIONS)
    print(f"wrote {len(values)} records to {TOPIC} ({len(_bad())} of them bad)")


def _dead_letters(bootstrap: str) -> list[tuple[str, str, str]]:
    reader = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "demo-reader", "enable.auto.commit": False}
    )
    _low, high = reader.get_watermark_offsets(TopicPartition(DEAD_LETTER, 0), timeout=10)
    reader.assign([TopicPartition(DEAD_LETTER, 0, 0)])
    found: list[tuple[str, str, str]] = []
    while len(found) < high:
        message = reader.poll(5)
        if message is None:
            break
        if message.error():
            continue
        headers = {k: _text(v) for k, v in to_record(message).headers}
        found.append((headers[H_OFFSET], headers[H_STAGE], headers[H_REASON]))
    reader.close()
    return found


def _text(value: str | bytes | None) -> str:
    return value.decode() if isinstance(value, bytes) else value or ""
