"""`personalize-consumer demo`: the whole path on this machine, nothing to configure.

Starts a local Kafka broker and the local personalize-events endpoint, writes a sample
clickstream with a few bad records and a sample item catalog (price updates, and a tombstone)
beside it, runs one consumer over both until it has caught up, and prints what happened.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from consumer.app import run
from consumer.config import load_settings
from consumer.deadletter.headers import H_OFFSET, H_PARTITION, H_REASON, H_STAGE
from consumer.ops.logs import configure_logging
from consumer.source.kafka import to_record
from consumer.testing.emulator import EmulatorConfig, EmulatorServer
from consumer.testing.localkafka import start_local_kafka
from consumer.testing.samples import (
    ITEM_MAPPING_FILE,
    ITEM_SCHEMA_FILE,
    InteractionEncoder,
    bad_records,
    catalog_items,
    create_topics,
    interactions,
    produce,
)

TOPIC, DEAD_LETTER, PARTITIONS = "clickstream", "clickstream.dead-letter", 4
ITEMS_TOPIC, ITEMS_DATASET = (
    "catalog.items",
    "arn:aws:personalize:us-east-1:000000000000:dataset/demo/ITEMS",
)
ITEM_UPDATES = 200


def run_demo(records: int = 2000) -> int:
    configure_logging("WARNING")
    with tempfile.TemporaryDirectory(prefix="personalize-demo-") as tmp:
        events_file = Path(tmp) / "accepted-events.jsonl"
        print("starting a local Kafka broker (the first run downloads its jars with Maven)...")
        with start_local_kafka() as kafka:
            emulator = EmulatorServer(EmulatorConfig(events_file=events_file))
            emulator.start()
            try:
                print(
                    f"broker {kafka.bootstrap_servers}, personalize-events endpoint {emulator.url}"
                )
                _write_sample(kafka.bootstrap_servers, records)
                _write_catalog(kafka.bootstrap_servers)
                os.environ.update(
                    AWS_ENDPOINT_URL_PERSONALIZE_EVENTS=emulator.url,
                    AWS_ACCESS_KEY_ID="demo",
                    AWS_SECRET_ACCESS_KEY="demo",
                    ITEMS_TOPIC=ITEMS_TOPIC,  # the example mapping's ${...}
                    ITEMS_DATASET_ARN=ITEMS_DATASET,
                )
                os.environ.pop("AWS_SESSION_TOKEN", None)
                settings = load_settings(
                    {
                        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
                        "KAFKA_GROUP_ID": "personalize-demo",
                        "SOURCE_TOPICS": f"{TOPIC},{ITEMS_TOPIC}",
                        "MAPPING_FILE": str(ITEM_MAPPING_FILE),
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
            items = stats.get("accepted_items", 0)
            print(f"sent:          {summary.sent_events - items} events, side by side with")
            print(
                f"               {items} item updates ({ITEM_UPDATES} on {ITEMS_TOPIC}: "
                f"{summary.skipped['superseded']} superseded by a later one in the same call, "
                f"{summary.skipped['tombstone']} tombstone skipped), in {summary.calls} calls"
            )
            print(
                f"endpoint:      {stats.get('accepted_events', 0)} events accepted by PutEvents, "
                f"{items} items by PutItems"
            )
            print(f"dead-lettered: {sum(summary.dead_lettered.values())} records")
            for partition, offset, stage, reason in _dead_letters(kafka.bootstrap_servers):
                print(f"  - {TOPIC} partition {partition} offset {offset}: {stage}: {reason}")
            clicks = {tp: o for tp, o in summary.committed.items() if tp[0] == TOPIC}
            print(
                f"committed:     offsets {sum(clicks.values())} of {records + len(_bad())} "
                f"over {len(clicks)} partitions of {TOPIC}, "
                f"{summary.committed.get((ITEMS_TOPIC, 0), 0)} of {ITEM_UPDATES + 1} "
                f"on {ITEMS_TOPIC}"
            )
    print(NEXT_STEPS)
    return 0


NEXT_STEPS = f"""
The dead-lettered records are on {DEAD_LETTER!r}, with their original bytes and headers saying
where they came from and why (README: "Dead-letter header contract"). With your own cluster:
  personalize-consumer check --dead-letter              how they map now, after a fix
  personalize-consumer replay --until-caught-up         send what now maps, once
  personalize-consumer check --topic <your topic>       how your records map, before going live
Configuration is by environment; README "Configuration" lists every variable."""


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


def _write_catalog(bootstrap: str) -> None:
    encoder = InteractionEncoder(ITEM_SCHEMA_FILE)
    values: list[bytes | None] = [encoder.encode(v) for v in catalog_items(ITEM_UPDATES)]
    create_topics(bootstrap, {ITEMS_TOPIC: 1})
    produce(bootstrap, ITEMS_TOPIC, [*values, None], 1)  # the last: a tombstone
    print(f"wrote {len(values)} item updates and a tombstone to {ITEMS_TOPIC}")


def _dead_letters(bootstrap: str) -> list[tuple[int, int, str, str]]:
    """(original partition, offset, stage, reason) of each dead-letter, in source order."""
    reader = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "demo-reader", "enable.auto.commit": False}
    )
    _low, high = reader.get_watermark_offsets(TopicPartition(DEAD_LETTER, 0), timeout=10)
    reader.assign([TopicPartition(DEAD_LETTER, 0, 0)])
    found: list[tuple[int, int, str, str]] = []
    while len(found) < high:
        message = reader.poll(5)
        if message is None:
            break
        if message.error():
            continue
        headers = {k: _text(v) for k, v in to_record(message).headers}
        where = int(headers[H_PARTITION]), int(headers[H_OFFSET])
        found.append((*where, headers[H_STAGE], headers[H_REASON]))
    reader.close()
    return sorted(found)


def _text(value: str | bytes | None) -> str:
    return value.decode() if isinstance(value, bytes) else value or ""
