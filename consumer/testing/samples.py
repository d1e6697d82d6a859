"""Sample clickstream for the demo, tests and benchmark: valid records and known-bad ones."""

from __future__ import annotations

import io
import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fastavro

from consumer import DEFAULT_SCHEMA_FILE, SCHEMAS_DIR
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


class RegistryEncoder:
    """Confluent wire format (magic byte, schema id, Avro) through a Schema Registry: the schema
    is registered under the topic's value subject on first use, as most producers do."""

    def __init__(self, registry_url: str, topic: str, schema_file: Path = DEFAULT_SCHEMA_FILE):
        from confluent_kafka.schema_registry import SchemaRegistryClient
        from confluent_kafka.schema_registry.avro import AvroSerializer
        from confluent_kafka.serialization import MessageField, SerializationContext

        client = SchemaRegistryClient({"url": registry_url})
        schema = json.dumps(load_schema_file(schema_file))
        self._serialize = AvroSerializer(client, schema, conf={"auto.register.schemas": True})
        self._context = SerializationContext(topic, MessageField.VALUE)

    def encode(self, value: dict[str, Any]) -> bytes:
        return bytes(self._serialize(value, self._context))

    def not_avro(self) -> bytes:
        """A framed value whose body is not a record of its schema: the header of a real one."""
        return self.encode(next(interactions(1)))[:5] + b"\xff\xfe not avro at all"


Encoder = InteractionEncoder | RegistryEncoder


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


ITEM_SCHEMA_FILE = SCHEMAS_DIR / "examples" / "item_catalog.avsc"
ITEM_MAPPING_FILE = SCHEMAS_DIR / "examples" / "item_catalog.mapping.yaml"
_CATEGORIES = ("shoes", "shirts", "bags", "hats")


def catalog_items(updates: int, items: int = 40, seed: int = 11) -> Iterator[dict[str, Any]]:
    """`updates` item records (item_catalog.avsc) over `items` skus, as a catalog service
    publishes them: prices change, so one sku appears several times."""
    rng = random.Random(seed)
    created = int(datetime.now(UTC).timestamp()) - 86_400
    for i in range(updates):
        sku = i % items if i < items else rng.randrange(items)
        yield {
            "sku": f"item-{sku}",
            "title": f"Sample item {sku}",
            "price": round(rng.uniform(5, 200), 2),
            "category": {"level1": _CATEGORIES[sku % len(_CATEGORIES)], "level2": None},
            "genres": rng.sample(("casual", "sport", "outdoor", "formal"), k=2),
            "in_stock": rng.random() < 0.9,
            "created_at": created + sku,
        }


@dataclass(frozen=True)
class BadRecord:
    """A record that can never be sent, and the stage that must catch it."""

    name: str
    value: bytes
    stage: str


def bad_records(encoder: Encoder) -> list[BadRecord]:
    rng = random.Random(1)
    now = datetime.now(UTC)
    too_long = interaction(0, 1, now, rng) | {"eventType": "x" * 300}
    reserved = interaction(0, 2, now, rng) | {"properties": {"userId": "someone"}}
    malformed = (
        encoder.not_avro() if isinstance(encoder, RegistryEncoder) else b"\x02\xff\xfe not avro"
    )
    return [
        BadRecord("malformed Avro", malformed, "decode"),
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
    bootstrap: str,
    topic: str,
    values: Sequence[bytes | None],
    partitions: int,
    headers: bool = True,
) -> None:
    """Write values round-robin over partitions, keyed by position, and wait for every ack
    (a None value is a tombstone)."""
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
    to the first of SOURCE_TOPICS, for docker compose and for trying a deployment by hand.

    With SCHEMA_REGISTRY_URL, in the Confluent wire format through that registry (the path most
    deployments run); without, schemaless with the shipped schema."""
    import os

    from confluent_kafka.admin import AdminClient

    bootstrap = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    topic = os.environ["SOURCE_TOPICS"].split(",")[0].strip()
    count = int(os.environ.get("SAMPLE_RECORDS", "10000"))
    metadata = AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic, timeout=30)
    partitions = len(metadata.topics[topic].partitions) or 1
    registry = os.environ.get("SCHEMA_REGISTRY_URL")
    encoder: Encoder = RegistryEncoder(registry, topic) if registry else InteractionEncoder()
    values = [encoder.encode(v) for v in interactions(count, sessions=max(1, count // 20))]
    values += [bad.value for bad in bad_records(encoder)]
    produce(bootstrap, topic, values, partitions)
    framing = f"Confluent wire format via {registry}" if registry else "schemaless Avro"
    print(f"wrote {len(values)} records to {topic} in {framing} ({len(bad_records(encoder))} bad)")
    if items_topic := os.environ.get("ITEMS_TOPIC"):
        _write_items(bootstrap, items_topic, registry, count // 10)
    return 0


def _write_items(bootstrap: str, topic: str, registry: str | None, count: int) -> None:
    """Item updates (item_catalog.avsc) keyed by sku, so a compacted topic keeps the last."""
    from confluent_kafka import Producer

    encoder: Encoder = (
        RegistryEncoder(registry, topic, ITEM_SCHEMA_FILE)
        if registry
        else InteractionEncoder(ITEM_SCHEMA_FILE)
    )
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for item in catalog_items(max(1, count)):
        send(producer, topic, value=encoder.encode(item), key=item["sku"].encode())
        producer.poll(0)
    if producer.flush(60):
        raise RuntimeError("sample items were not all acknowledged")
    print(f"wrote {max(1, count)} item updates to {topic}")


if __name__ == "__main__":
    raise SystemExit(main())
