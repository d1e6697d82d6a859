"""Decoded records to PutEvents events, as a mapping file says (`consumer/mapping/file.py`).

The file is checked once, at start-up, into a `MappingPlan`; `Mapper` compiles the plan into small
closures (`fields.py`), so a record costs dictionary lookups and the conversions its fields need.
Every event is then checked against botocore's model before it costs an API call. Failure reasons
name fields, paths and rules, never values: the model marks ids and properties sensitive.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from hashlib import sha1
from typing import Any

from consumer.mapping.checkers import Violation
from consumer.mapping.fields import (
    CONVERSION_ERRORS,
    Unmappable,
    getter,
    optional_steps,
    sent_at_getter,
    text,
)
from consumer.mapping.plan import MappingPlan
from consumer.mapping.validation import validate_event, validate_put_events
from consumer.records import Failure, MappedEvent, SessionKey, Skipped, SourceRecord, Stage

EVENT_ID_NAMESPACE = uuid.UUID("6f1c5d2e-3b1a-4c55-9a51-2f1f7f3f8a10")


def derived_event_id(topic: str, partition: int, offset: int) -> str:
    """A stable id per Kafka record: Personalize ignores the replay after a crash for training."""
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{topic}/{partition}/{offset}"))


_NAMESPACE_BYTES = EVENT_ID_NAMESPACE.bytes
#: RFC 4122 variant: the top two bits of this nibble are 10 (version 5 goes in the one before).
_VARIANT = {f"{n:x}": f"{(n & 0x3) | 0x8:x}" for n in range(16)}


#: The name hashed so far for each (topic, partition): only the offset is hashed per record.
_PREFIXES: dict[tuple[str, int], Any] = {}


def _derived_event_id_fast(topic: str, partition: int, offset: int) -> str:
    """`derived_event_id` without building a UUID object, 3x cheaper (a test proves them equal)."""
    prefix = _PREFIXES.get((topic, partition))
    if prefix is None:
        if len(_PREFIXES) >= 4096:
            _PREFIXES.clear()
        prefix = _PREFIXES[(topic, partition)] = sha1(
            _NAMESPACE_BYTES + f"{topic}/{partition}/".encode()
        )
    digest = prefix.copy()
    digest.update(b"%d" % offset)
    h = digest.hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


#: Sessions whose request-level fields (trackingId, userId, sessionId) were checked; bounded.
_SESSIONS_REMEMBERED = 4096


class Mapper:
    """Maps decoded records to PutEvents events (or a `Failure`, or `Skipped`) by a plan."""

    def __init__(self, plan: MappingPlan) -> None:
        self.plan = plan
        sources = plan.sources
        self._tracking_id = plan.tracking_id
        self._topic_tracking_ids = dict(plan.topic_tracking_ids)
        self._session_id = getter(sources["sessionId"], text)
        self._user_id = getter(sources["userId"], text) if "userId" in sources else None
        self._event_id = getter(sources["eventId"], text) if "eventId" in sources else None
        self._event_type = getter(sources["eventType"], None)
        self._filtering = bool(plan.include is not None or plan.exclude or plan.rename)
        self._include, self._exclude = plan.include, plan.exclude
        self._rename = dict(plan.rename)
        self._sent_at = sent_at_getter(sources["sentAt"], plan.sent_at_unit)
        self._steps = optional_steps(plan)
        self._checked_sessions: dict[SessionKey, tuple[Violation, ...]] = {}
        self._missing = {
            name: Failure(Stage.MAP, "required", f"{name}: no value at {sources[name].describe()}")
            for name in ("sessionId", "eventType", "sentAt")
        }

    def map(
        self, record: SourceRecord, value: Mapping[str, Any]
    ) -> MappedEvent | Failure | Skipped:
        name = "eventType"  # what is being mapped, for the reason if a conversion fails
        try:
            event_type = self._event_type(value)
            if event_type is None:
                return self._missing[name]
            if self._filtering:  # first: a filtered record is skipped whatever else it holds
                if type(event_type) is not str:
                    return Failure(Stage.MAP, "type", "eventType: must be a string")
                if self._include is not None and event_type not in self._include:
                    return Skipped(record, "eventType is not in the include list")
                if event_type in self._exclude:
                    return Skipped(record, "eventType is in the exclude list")
                event_type = self._rename.get(event_type, event_type)
            name = "sessionId"
            session_id = self._session_id(value)
            if session_id is None:
                return self._missing[name]
            name = "sentAt"
            sent_at = self._sent_at(value)
            if sent_at is None:
                return self._missing[name]
            name = "eventId"
            event_id = self._event_id(value) if self._event_id is not None else None
            event: dict[str, Any] = {
                "eventId": event_id
                or _derived_event_id_fast(record.topic, record.partition, record.offset),
                "eventType": event_type,
                "sentAt": sent_at,
            }
            for name, step in self._steps:  # noqa: B007 (`name` is read by the except clause)
                step(value, event)
            name = "userId"
            user_id = self._user_id(value) if self._user_id is not None else None
        except Unmappable as exc:
            return Failure(exc.stage, exc.rule, exc.reason)
        except CONVERSION_ERRORS as exc:
            kind = type(exc).__name__
            return Failure(Stage.MAP, kind, f"{name}: cannot be mapped ({kind})")
        tracking_id = self._topic_tracking_ids.get(record.topic, self._tracking_id)
        session = SessionKey(tracking_id, user_id, session_id)
        violations: Sequence[Violation] = self._session_violations(session)
        if not violations:
            violations = validate_event(event, "", properties_checked=True)
            if not violations:
                return MappedEvent(record, session, event)
        first = violations[0]
        more = f" (and {len(violations) - 1} more)" if len(violations) > 1 else ""
        return Failure(Stage.VALIDATE, first.rule, first.message + more)

    def _session_violations(self, session: SessionKey) -> tuple[Violation, ...]:
        """The request-level fields, checked once per session rather than once per event."""
        try:
            found = self._checked_sessions.get(session)
        except TypeError:  # an id of a type the check rejects (a list, say): not cacheable
            return tuple(validate_put_events(_request_for(session)))
        if found is None:
            found = tuple(validate_put_events(_request_for(session)))
            if len(self._checked_sessions) >= _SESSIONS_REMEMBERED:
                self._checked_sessions.clear()
            self._checked_sessions[session] = found
        return found


#: A valid event, so that checking a session's request reports only the session's own fields.
_PLACEHOLDER_EVENT = {"eventType": "placeholder", "sentAt": 0}


def _request_for(session: SessionKey) -> dict[str, Any]:
    """A request of the session's calls, to check its request-level fields."""
    request: dict[str, Any] = {
        "trackingId": session.tracking_id,
        "sessionId": session.session_id,
        "eventList": [_PLACEHOLDER_EVENT],
    }
    if session.user_id is not None:
        request["userId"] = session.user_id
    return request
