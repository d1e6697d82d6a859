"""Decoded records to PutEvents events, as a mapping file says (see `consumer/mappingfile.py`).

The file is checked once, at start-up, into a `MappingPlan`; `Mapper` compiles the plan into small
closures, so a record costs dictionary lookups and the conversions its fields need, never parsing.
Every event is then checked against botocore's model before it costs an API call. Failure reasons
name fields, paths and rules, never values: the model marks ids and properties sensitive.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from hashlib import sha1
from operator import methodcaller
from typing import TYPE_CHECKING, Any

from consumer.records import Failure, MappedEvent, SessionKey, SourceRecord, Stage
from consumer.validation import (
    Violation,
    check_property_keys,
    validate_event,
    validate_put_events,
)

if TYPE_CHECKING:
    from consumer.mappingschema import MappingPlan, Source, Unit

#: Namespace for derived event ids; changing it would make replays look like new events.
EVENT_ID_NAMESPACE = uuid.UUID("6f1c5d2e-3b1a-4c55-9a51-2f1f7f3f8a10")


def derived_event_id(topic: str, partition: int, offset: int) -> str:
    """A stable id per Kafka record: Personalize ignores the replay after a crash for training."""
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{topic}/{partition}/{offset}"))


_NAMESPACE_BYTES = EVENT_ID_NAMESPACE.bytes
#: RFC 4122 variant: the top two bits of this nibble are 10 (version 5 goes in the one before).
_VARIANT = {f"{n:x}": f"{(n & 0x3) | 0x8:x}" for n in range(16)}


def _derived_event_id_fast(topic: str, partition: int, offset: int) -> str:
    """`derived_event_id` without building a UUID object, 3x cheaper (a test proves them equal)."""
    h = sha1(_NAMESPACE_BYTES + f"{topic}/{partition}/{offset}".encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


@dataclass(frozen=True, slots=True)
class Skipped:
    """A record the mapping filters out on purpose: done and counted, never dead-lettered."""

    record: SourceRecord
    reason: str


class _Unmappable(Exception):
    """A value that can never become its PutEvents field; `reason` names fields, never values."""

    def __init__(self, rule: str, reason: str, stage: Stage = Stage.MAP) -> None:
        super().__init__(reason)
        self.rule, self.reason, self.stage = rule, reason, stage


Getter = Callable[[Mapping[str, Any]], Any]
Step = Callable[[Mapping[str, Any], dict[str, Any]], None]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: What a hostile value can make a conversion raise; anything else is a bug and propagates.
_CONVERSION_ERRORS = (LookupError, TypeError, ValueError, AttributeError, OverflowError)


def _json_default(value: object) -> str:
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError("not JSON-encodable")


#: Built once: `json.dumps` with options builds an encoder per call, which dominated its cost.
_encode_json = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_json_default
).encode


#: What `_encode_json` writes for a string (json's C function, the same for ensure_ascii=False).
_quote: Callable[[str], str] = json.encoder.encode_basestring


def _encode_properties(properties: dict[Any, Any]) -> str:
    """`_encode_json`, with the usual map of strings done without the encoder's per-call setup."""
    for key, value in properties.items():
        if type(key) is not str or type(value) is not str:
            return _encode_json(properties)
    quote = _quote
    return "{" + ",".join([quote(k) + ":" + quote(v) for k, v in properties.items()]) + "}"


#: Sessions whose request-level fields (trackingId, userId, sessionId) were checked; bounded.
_SESSIONS_REMEMBERED = 4096


class Mapper:
    """Maps decoded records to PutEvents events (or a `Failure`, or `Skipped`) by a plan."""

    def __init__(self, plan: MappingPlan) -> None:
        self.plan = plan
        sources = plan.sources
        self._tracking_id = plan.tracking_id
        self._topic_tracking_ids = dict(plan.topic_tracking_ids)
        self._session_id = _getter(sources["sessionId"], _text)
        self._user_id = _getter(sources["userId"], _text) if "userId" in sources else None
        self._event_id = _getter(sources["eventId"], _text) if "eventId" in sources else None
        self._event_type = _getter(sources["eventType"], None)
        self._filtering = bool(plan.include is not None or plan.exclude or plan.rename)
        self._include, self._exclude = plan.include, plan.exclude
        self._rename = dict(plan.rename)
        self._sent_at = _sent_at_getter(sources["sentAt"], plan.sent_at_unit)
        self._steps = _optional_steps(plan)
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
        except _Unmappable as exc:
            return Failure(exc.stage, exc.rule, exc.reason)
        except _CONVERSION_ERRORS as exc:
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


class InteractionMapper(Mapper):
    """The default mapping (`schemas/interaction.mapping.yaml` for `schemas/interaction.avsc`)."""

    def __init__(self, tracking_id: str) -> None:
        super().__init__(_default_plan(tracking_id))


@lru_cache(maxsize=8)
def _default_plan(tracking_id: str) -> MappingPlan:
    from consumer import DEFAULT_SCHEMA_FILE
    from consumer.mappingfile import DEFAULT_MAPPING_FILE, load_plan, load_writer_schema

    schema = load_writer_schema(DEFAULT_SCHEMA_FILE)
    plan = load_plan(DEFAULT_MAPPING_FILE, schema, {"PERSONALIZE_TRACKING_ID": "default"})
    return replace(plan, tracking_id=tracking_id)


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


# -- compiling a plan into closures ------------------------------------------------------------


def _path_getter(path: tuple[str, ...]) -> Getter:
    if len(path) == 1:
        return methodcaller("get", path[0])  # no Python frame: the common case, kept cheap

    def get_path(value: Mapping[str, Any]) -> Any:
        found: Any = value
        for key in path:
            if type(found) is not dict and not isinstance(found, Mapping):
                return None  # null on the way (or another branch of a union): no value
            found = found.get(key)
        return found

    return get_path


def _getter(source: Source, convert: Callable[[Any], Any] | None) -> Getter:
    """A constant, one path, or the first non-null of several; `convert`ed if the plan says so."""
    if not source.paths:
        const = source.const
        return lambda _value: const
    getters = tuple(_path_getter(p) for p in source.paths)

    def first(value: Mapping[str, Any]) -> Any:
        for get in getters:
            found = get(value)
            if found is not None:
                return found
        return None

    get = getters[0] if len(getters) == 1 else first
    if convert is None or not source.convert:
        return get

    def converted(value: Mapping[str, Any]) -> Any:
        found = get(value)
        return None if found is None else convert(found)

    return converted


def _text(found: Any) -> Any:
    """Ids may be numbers or UUIDs in the writer schema; PutEvents wants strings."""
    kind = type(found)
    return str(found) if kind is int or kind is uuid.UUID else found  # validation names the rest


def _sent_at_getter(source: Source, unit: Unit) -> Getter:
    get = _getter(source, None)
    where = source.describe()
    per = {"seconds": "seconds", "millis": "milliseconds", "micros": "microseconds"}.get(unit)

    def sent_at(value: Mapping[str, Any]) -> Any:
        found = get(value)
        if type(found) is datetime and unit == "logical":
            return found
        if found is None:
            return None
        if per is not None:
            return _from_number(found, per, where)
        if unit == "iso8601":
            return _from_iso8601(found, where)
        if isinstance(found, datetime):
            return found
        if type(found) is int:  # a writer schema without the logical type: epoch millis
            return _from_number(found, "milliseconds", where)
        raise _Unmappable("timestamp", f"sentAt: not a time at {where}")

    return sent_at


def _from_number(found: Any, per: str, where: str) -> datetime:
    kind = type(found)
    if kind is str:
        try:
            found = int(found) if found.isdigit() else float(found)
        except ValueError:
            raise _Unmappable("timestamp", f"sentAt: not a number at {where}") from None
    elif kind is not int and kind is not float:
        raise _Unmappable("timestamp", f"sentAt: not a number at {where}")
    try:
        return _EPOCH + timedelta(**{per: found})
    except (OverflowError, ValueError):  # beyond datetime's range, or not finite
        raise _Unmappable("timestamp", f"sentAt: out of range at {where} ({per})") from None


def _from_iso8601(found: Any, where: str) -> datetime:
    if type(found) is not str:
        raise _Unmappable("timestamp", f"sentAt: not an ISO-8601 string at {where}")
    try:
        parsed = datetime.fromisoformat(found)
    except ValueError:
        raise _Unmappable("timestamp", f"sentAt: not an ISO-8601 time at {where}") from None
    if parsed.tzinfo is None:
        reason = f"sentAt: ISO-8601 time without a UTC offset (Z or +hh:mm) at {where}"
        raise _Unmappable("timestamp", reason)
    return parsed


def _optional_steps(plan: MappingPlan) -> tuple[tuple[str, Step], ...]:
    """Fields left out when their source has no value: each a step that may add it."""
    sources = plan.sources
    steps: list[tuple[str, Step]] = []
    if (source := sources.get("eventValue")) is not None:
        steps.append(("eventValue", _step("eventValue", _getter(source, _number(source)))))
    for name in ("itemId", "recommendationId"):
        if (source := sources.get(name)) is not None:
            steps.append((name, _step(name, _getter(source, _text))))
    if (source := sources.get("impression")) is not None:
        items = _impression(source, plan.impression_delimiter)
        steps.append(("impression", _step("impression", _getter(source, None), items)))
    if plan.properties_from is not None or plan.properties:
        steps.append(("properties", _step("properties", _properties(plan))))
    if (source := sources.get("metricAttributionSource")) is not None:
        get = _getter(source, _text)
        step = _step("metricAttribution", get, lambda found: {"eventAttributionSource": found})
        steps.append(("metricAttributionSource", step))
    return tuple(steps)


def _step(key: str, get: Getter, then: Callable[[Any], Any] | None = None) -> Step:
    """Set `key` from `get` (through `then`, which may drop it with None) unless it is null."""
    if then is None:

        def copy(value: Mapping[str, Any], event: dict[str, Any]) -> None:
            found = get(value)
            if found is not None:
                event[key] = found

        return copy

    def convert(value: Mapping[str, Any], event: dict[str, Any]) -> None:
        found = get(value)
        if found is not None:
            found = then(found)
            if found is not None:
                event[key] = found

    return convert


def _number(source: Source) -> Callable[[Any], Any]:
    where = source.describe()

    def number(found: Any) -> Any:
        if type(found) is str:
            try:
                return float(found)
            except ValueError:
                raise _Unmappable("number", f"eventValue: not a number at {where}") from None
        return found  # a number, or a type the validation reports by field name

    return number


def _impression(source: Source, delimiter: str | None) -> Callable[[Any], Any]:
    """Items of an array (ids as strings) or of a delimited string; none: left out."""
    where, convert = source.describe(), source.convert

    def items(found: Any) -> list[Any] | None:
        if delimiter is None:
            if type(found) is list or isinstance(found, (list, tuple)):
                return ([_text(item) for item in found] if convert else list(found)) or None
        elif type(found) is str:
            return [
                item for item in (part.strip() for part in found.split(delimiter)) if item
            ] or None
        expected = "a delimited string" if delimiter is not None else "a list"
        raise _Unmappable("type", f"impression: not {expected} at {where}")

    return items


def _properties(plan: MappingPlan) -> Getter:
    """The properties as a JSON object string, or None when there are none."""
    spread = plan.properties_from
    get_map = _getter(spread, None) if spread is not None else None
    named = tuple((key, _getter(source, None)) for key, source in plan.properties)
    where = spread.describe() if spread is not None else ""

    def encode(found: Any) -> str | None:
        if not found:
            return None
        if type(found) is not dict:
            if not isinstance(found, Mapping):
                raise _Unmappable("type", f"properties: not a map at {where}")
            found = dict(found)
        reserved = check_property_keys(found)
        if reserved:  # checked here, on the map: validation then needn't parse the JSON back
            raise _Unmappable(reserved[0].rule, reserved[0].message, Stage.VALIDATE)
        try:
            return _encode_properties(found)
        except (TypeError, ValueError):
            reason = "properties: values must be strings, finite numbers or booleans"
            raise _Unmappable("json", reason) from None

    if get_map is not None and spread is not None and not named and not spread.convert:
        return lambda value: encode(get_map(value))  # a map of strings: the default mapping

    def build(value: Mapping[str, Any]) -> str | None:
        properties: dict[str, Any] = {}
        if get_map is not None:
            found = get_map(value)
            if found:
                if not isinstance(found, Mapping):
                    raise _Unmappable("type", f"properties: not a map at {where}")
                properties = {k: v for k, v in found.items() if v is not None}
        for key, get in named:
            found = get(value)
            if found is not None:
                properties[key] = found
        return encode(properties)

    return build
