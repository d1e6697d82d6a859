"""Sample clickstream for the demo, tests and benchmark: valid records and known-bad ones."""

from __future__ import annotations

import io
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fastavro

from consumer import DEFAULT_SCHEMA_FILE
from consumer.decode import load_schema_file
from consumer.kafkaclient import produce as send

EVENT_TYPES = ("View", "Click", "AddToCart", "Purchase")


class InteractionEncoder:
    """Schemaless Avro encoding with the shipped (or another) writer schema."""

    def __init__(self, schema_file: Path = DEFAULT_SCHEMA_FILE) -> None:
        self._schema = fastavro.parse_schema(load_schema_file(schema_file))

    def encode(self, value: dict[str, Any]) -> bytes:
        buffer = io.BytesIO()
        fastavro.schemaless_writer(buffer, self._schema, value)
        return buffer.getvalue()


def interaction(index: int, session: int, now: datetime, rng: random.Random) -> dict[str, Any]:
    """One valid interaction; `eventId` left null so the consumer derives it."""
    return {
        "userId": f"user-{session % 997}",
        "sessionId": f"session-{session}",
        "eventId": None,
        "eventType": rng.choice(EVENT_TYPES),
        "eventValue": round(rng.uniform(1, 100), 2) if rng.random() < 0.3 else None,
        "itemId": f"item-{rng.randrange(5000)}",
        "sentAt": now - timedelta(seconds=index),
        "recommendationId": None,
        "impression": [f"item-{rng.randrange(5000)}" for _ in range(rng.randrange(0, 4))],
        "properties": {"device": rng.choice(("ios", "android", "web"))},
        "metricAttributionSource": "demo" if rng.random() < 0.1 else None,
    }


def interactions(count: int, sessions: int = 50, seed: int = 7) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    for i in range(count):
        yield interaction(i, rng.randrange(sessions), now, rng)


@dataclass(frozen=True)
class BadRecord:
    """A record that can never be sent, and the stage that must catch it."""

    name: str
    value: bytes
    stage: str


def bad_records(encoder: InteractionEncoder) -> list[BadRecord]:
    rng = random.Random(1)
    now = datetime.now(UTC)
    too_long = interaction(0, 1, now, rng) | {"eventType": "x" * 300}
    reserved = interaction(0, 2, now, rng) | {"properties": {"userId": "someone"}}
    return [
        BadRecord("malformed Avro", b"\x02\xff\xfe not avro at all", "decode"),
        BadRecord("empty value", b"", "decode"),
        BadRecord("eventType of 300 characters", encoder.encode(too_long), "validate"),
        BadRecord("reserved key in properties", encoder.encode(reserved), "validate"),
    ]


def create_topics(bootstrap: str, partitions: dict[str, int], timeout_s: float = 30.0) -> None:
    """Create topics (replication factor 1: for local brokers) and wait until they exist."""
    from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=n, replication_factor=1) for name, n in partitions.items()]
    )
    for future in futures.values():
        future.result(timeout=timeout_s)


def produce(
    bootstrap: str, topic: str, values: list[bytes], partitions: int, headers: bool = True
) -> None:
    """Write values round-robin over partitions, keyed by position, and wait for every ack."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "acks": "all"})
    failures: list[str] = []

    def report(err: object, _msg: object) -> None:
        if err is not None:
            failures.append(str(err))

    for i, value in enumerate(values):
        send(
            producer,
            topic,
            value=value,
            key=f"k{i}".encode(),
            partition=i % partitions,
            headers=[("source", b"sample")] if headers else None,
            on_delivery=report,
        )
        producer.poll(0)
    remaining = producer.flush(60)
    if failures or remaining:
        raise RuntimeError(f"sample produce failed: {failures[:3]} ({remaining} unacknowledged)")


def main() -> int:
    """`python -m consumer.testing.samples`: write a sample clickstream (with its bad records)
    to the first of SOURCE_TOPICS, for docker compose and for trying a deployment by hand."""
    import os

    from confluent_kafka.admin import AdminClient

    bootstrap = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    topic = os.environ["SOURCE_TOPICS"].split(",")[0].strip()
    count = int(os.environ.get("SAMPLE_RECORDS", "10000"))
    metadata = AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic, timeout=30)
    partitions = len(metadata.topics[topic].partitions) or 1
    encoder = InteractionEncoder()
    values = [encoder.encode(v) for v in interactions(count, sessions=max(1, count // 20))]
    values += [bad.value for bad in bad_records(encoder)]
    produce(bootstrap, topic, values, partitions)
    print(f"wrote {len(values)} records to {topic} ({len(bad_records(encoder))} of them bad)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
