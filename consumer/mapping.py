"""Decoded interaction records to PutEvents events.

The shipped schema mirrors the PutEvents API, so the default mapping is the identity plus the few
conversions the API needs (properties as a JSON string, a stable eventId, metricAttribution as a
structure). Every event is checked against botocore's model before it costs an API call.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from consumer.records import Failure, MappedEvent, SessionKey, SourceRecord, Stage
from consumer.validation import validate_put_events

#: Namespace for derived event ids; changing it would make replays look like new events.
EVENT_ID_NAMESPACE = uuid.UUID("6f1c5d2e-3b1a-4c55-9a51-2f1f7f3f8a10")


def derived_event_id(topic: str, partition: int, offset: int) -> str:
    """A stable id per Kafka record: Personalize ignores the replay after a crash for training."""
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{topic}/{partition}/{offset}"))


class InteractionMapper:
    """Maps records of `schemas/interaction.avsc` for one tracking id."""

    def __init__(self, tracking_id: str) -> None:
        self._tracking_id = tracking_id

    def map(self, record: SourceRecord, value: Mapping[str, Any]) -> MappedEvent | Failure:
        try:
            session = SessionKey(self._tracking_id, value.get("userId"), value["sessionId"])
            event = _event(record, value)
        except (KeyError, TypeError, ValueError) as exc:
            return Failure(Stage.MAP, type(exc).__name__, _map_reason(exc))
        violations = validate_put_events(_single_event_request(session, event))
        if violations:
            first = violations[0]
            more = f" (and {len(violations) - 1} more)" if len(violations) > 1 else ""
            message = first.message.replace("eventList[0].", "")
            return Failure(Stage.VALIDATE, first.rule, message + more)
        return MappedEvent(record, session, event)


def _single_event_request(session: SessionKey, event: dict[str, Any]) -> dict[str, Any]:
    """The request this event would go out in, so request-level fields are checked too."""
    request: dict[str, Any] = {
        "trackingId": session.tracking_id,
        "sessionId": session.session_id,
        "eventList": [event],
    }
    if session.user_id is not None:
        request["userId"] = session.user_id
    return request


def _event(record: SourceRecord, value: Mapping[str, Any]) -> dict[str, Any]:
    sent_at = value["sentAt"]
    if isinstance(sent_at, int):  # a writer schema without the logical type: epoch millis
        sent_at = datetime.fromtimestamp(sent_at / 1000, tz=UTC)
    event: dict[str, Any] = {
        "eventId": value.get("eventId")
        or derived_event_id(record.topic, record.partition, record.offset),
        "eventType": value["eventType"],
        "sentAt": sent_at,
    }
    for name in ("eventValue", "itemId", "recommendationId"):
        if value.get(name) is not None:
            event[name] = value[name]
    if value.get("impression"):
        event["impression"] = list(value["impression"])
    if value.get("properties"):
        event["properties"] = json.dumps(dict(value["properties"]), separators=(",", ":"))
    if value.get("metricAttributionSource") is not None:
        event["metricAttribution"] = {"eventAttributionSource": value["metricAttributionSource"]}
    return event


def _map_reason(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"record has no field {exc.args[0]!r}"
    return f"record cannot be mapped: {type(exc).__name__}"
