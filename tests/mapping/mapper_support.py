"""Shared by the mapper tests: a clickstream-like Avro schema of its own (CLICK), a mapping file
for it (FIELDS) and mappers made from variations of it, records as fastavro decodes them."""

from __future__ import annotations

import io
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fastavro
import yaml

from consumer.mapping import Mapper, load_mapping
from consumer.records import Failure, MappedEvent, SourceRecord

SENT_AT = datetime(2026, 11, 1, 12, 30, 5, 250_000, tzinfo=UTC)
RECORD = SourceRecord("clicks", 3, 1234, b"k", b"v", [], 1)


def _null(schema: Any) -> list[Any]:
    return ["null", schema]


def _record(name: str, **fields: Any) -> dict[str, Any]:
    """A record schema; nullable fields default to null, maps to empty."""
    return {"type": "record", "name": name, "fields": [
        {"name": k, "type": t} | ({"default": None} if isinstance(t, list) else {})
        | ({"default": {}} if isinstance(t, dict) and t.get("type") == "map" else {})
        for k, t in fields.items()
    ]}  # fmt: skip


CLICK = _record(
    "Click",
    userId=_null("string"),
    anonymousId=_null("string"),
    session=_null(_record("Session", id=_null("string"))),
    event="string",
    messageId=_null("string"),
    visit={"type": "string", "logicalType": "uuid"},
    ts_seconds=_null("double"),
    ts_millis=_null("long"),
    ts_micros=_null("long"),
    ts_text=_null("string"),
    ts_logical=_null({"type": "long", "logicalType": "timestamp-micros"}),
    context=_record(
        "Context",
        page=_null(_record("Page", url=_null("string"))),
        campaign=_null(_record("Campaign", source=_null("string"))),
    ),
    properties={"type": "map", "values": ["null", "string", "long", "double", "boolean"]},
    item_ids=_null({"type": "array", "items": ["string", "long"]}),
    item_list=_null("string"),
    sku=_null("long"),
    num_ratings=_null("int"),
    labels={"type": "map", "values": "string"},
)
_PARSED = fastavro.parse_schema(CLICK)

FIELDS: dict[str, Any] = {
    "userId": "userId",
    "sessionId": ["session.id", "anonymousId", "userId"],
    "eventId": "messageId",
    "eventType": {"path": "event", "exclude": ["heartbeat"], "rename": {"product_viewed": "View"}},
    "sentAt": {"path": "ts_millis", "unit": "millis"},
    "eventValue": "properties.price",
    "itemId": ["properties.product_id", "sku"],
    "recommendationId": "properties.recommendation_id",
    "impression": "item_ids",
    "metricAttributionSource": "context.campaign.source",
    "properties": {"fields": ["num_ratings", "context.page.url"]},
}


def mapper_for(fields: dict[str, Any] | None = None, **top: Any) -> Mapper:
    """A mapper from a mapping file of FIELDS with `fields` replaced (None values removed)."""
    entries = {k: v for k, v in (FIELDS | (fields or {})).items() if v is not None}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mapping.yaml"
        path.write_text(yaml.safe_dump({"fields": entries, **top}))
        return load_mapping(path, CLICK, {"PERSONALIZE_TRACKING_ID": "tracker-1"})


def click(**changes: Any) -> dict[str, Any]:
    """A Click as fastavro decodes it (written and read back, so types are the real ones)."""
    base: dict[str, Any] = {
        "userId": "u-1",
        "anonymousId": "anon-1",
        "session": {"id": "s-1"},
        "event": "product_viewed",
        "visit": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "ts_millis": int(SENT_AT.timestamp() * 1000),
        "context": {"page": {"url": "https://shop.example/p/9"}, "campaign": None},
        "properties": {"product_id": "p-9", "price": 12.5},
    }
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, _PARSED, base | changes)
    buffer.seek(0)
    decoded = fastavro.schemaless_reader(buffer, _PARSED, None)
    assert isinstance(decoded, dict)
    return decoded


def event_of(mapper: Mapper, record: dict[str, Any], topic: str = "clicks") -> MappedEvent:
    outcome = mapper.map(SourceRecord(topic, 0, 7, None, b"", [], None), record)
    assert isinstance(outcome, MappedEvent), outcome
    return outcome


def failure_of(mapper: Mapper, record: dict[str, Any]) -> Failure:
    outcome = mapper.map(RECORD, record)
    assert isinstance(outcome, Failure), outcome
    return outcome


DEFAULT = mapper_for()
