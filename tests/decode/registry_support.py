"""Shared by the Schema Registry tests: two versions of a clickstream schema with a record of
each, Confluent wire-format bytes built by hand, a clock the test moves, and a failure check."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import fastavro

from consumer.records import Failure, Stage

AT = datetime(2026, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC)

#: Version 1 of a clickstream schema, and version 2: `legacyScore` removed, `device` and `tags`
#: added, all with defaults (the evolution BACKWARD/FULL compatibility allows).
CLICK_V1: dict[str, Any] = {
    "type": "record",
    "name": "Click",
    "namespace": "shop",
    "fields": [
        {"name": "userId", "type": "string"},
        {"name": "itemId", "type": "string"},
        {"name": "legacyScore", "type": "int", "default": 0},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    ],
}
CLICK_V2: dict[str, Any] = {
    "type": "record",
    "name": "Click",
    "namespace": "shop",
    "fields": [
        {"name": "userId", "type": "string"},
        {"name": "itemId", "type": "string"},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "device", "type": ["null", "string"], "default": None},
        {"name": "tags", "type": {"type": "array", "items": "string"}, "default": []},
    ],
}
V1_RECORD = {"userId": "u1", "itemId": "i1", "legacyScore": 7, "at": AT}
V2_RECORD = {"userId": "u2", "itemId": "i2", "at": AT, "device": "ios", "tags": ["a"]}


def body(schema: dict[str, Any], record: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(schema), record)
    return buffer.getvalue()


def wire(schema_id: int, schema: dict[str, Any], record: dict[str, Any]) -> bytes:
    """Confluent wire format by hand: magic byte, big-endian schema id, schemaless Avro."""
    return b"\0" + schema_id.to_bytes(4, "big") + body(schema, record)


class FakeClock:
    """Time that passes only when a test says so: no sleeping, no flakiness."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def assert_failure(outcome: object, error_class: str) -> Failure:
    assert isinstance(outcome, Failure), outcome
    assert outcome.stage is Stage.DECODE
    assert outcome.error_class == error_class, outcome
    assert outcome.reason
    return outcome
