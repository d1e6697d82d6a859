"""Schema Registry framing end to end: two schema versions in one topic, and a registry outage
that delays records but neither loses nor dead-letters any."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastavro

from consumer import DEFAULT_SCHEMA_FILE
from consumer.config import load_settings
from consumer.mapping import derived_event_id
from consumer.testing.emulator import EmulatorServer
from consumer.testing.samples import interactions, produce
from tests.integration.support import (
    accepted_events,
    committed,
    end_offsets,
    read_all,
    running,
    wait_for,
)
from tests.registry_server import RegistryServer

V1: dict[str, Any] = json.loads(DEFAULT_SCHEMA_FILE.read_text())
V2: dict[str, Any] = V1 | {
    "fields": [*V1["fields"], {"name": "channel", "type": "string", "default": "web"}]
}


def framed(schema_id: int, schema: dict[str, Any], record: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(schema), record)
    return b"\0" + schema_id.to_bytes(4, "big") + buffer.getvalue()


def test_v1_and_v2_records_map_and_a_registry_outage_only_delays_them(
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    emulator: EmulatorServer,
    events_file: Path,
) -> None:
    topic, dead_letter = new_topic(partitions=2), new_topic()
    with RegistryServer() as registry:
        v1 = registry.register(f"{topic}-value", V1)
        v2 = registry.register(f"{topic}-value", V2)
        values = [
            framed(v1, V1, v) if n % 2 else framed(v2, V2, v | {"channel": "app"})
            for n, v in enumerate(interactions(200))
        ]
        produce(kafka_bootstrap, topic, values, 2)
        settings = load_settings(
            {
                "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
                "KAFKA_GROUP_ID": "g-registry",
                "SOURCE_TOPICS": topic,
                "DEAD_LETTER_TOPIC": dead_letter,
                "PERSONALIZE_TRACKING_ID": "tracker-it",
                "AWS_REGION": "us-east-1",
                "SCHEMA_REGISTRY_URL": registry.url,
                "METRICS_PORT": "0",
            }
        )
        ends = end_offsets(kafka_bootstrap, topic, 2)
        with running(settings) as (pipeline, _):
            with registry.outage("unavailable"):
                wait_for(lambda: len(registry.requests) >= 3, 60, "lookups refused by the outage")
                assert all(
                    o < 0 for o in committed(kafka_bootstrap, "g-registry", topic, 2).values()
                )
            wait_for(
                lambda: committed(kafka_bootstrap, "g-registry", topic, 2) == ends,
                90,
                "every offset committed once the registry is back",
            )
            assert not pipeline.summary.dead_lettered
    emulator.flush()
    arrived = {e["eventId"] for e in accepted_events(events_file)}
    assert arrived == {derived_event_id(topic, n % 2, n // 2) for n in range(200)}
    assert read_all(kafka_bootstrap, dead_letter) == []
