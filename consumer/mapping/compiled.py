"""A `MappingPlan` as one generated Python function per mapper: a record's fields read with
`value.get` inline, in the order the plan gives, instead of through a closure per field.

Why: mapping was the largest part of the poll loop's work per record. In the loop benchmark's
profile (`bench/loop.py`, dense) `Mapper.map` with its closures was 31% of the poll loop's CPU,
most of it calls: a step per optional field, a getter per step, a `NamedTuple.__new__` per
result. Measured on this machine (dense sample records, the closures and this code in one
process, 2,000-record rounds taken in turn, 60 each): map + validate 11.8 µs a record (median
round) with the closures, 8.9 generated; with decoding, 33.8 against 27.9.

What is read inline is only the plain case: a source with one path of one field. Anything else
(nested paths, several paths, constants, conversions the writer schema calls for, `sentAt`
units, properties) still goes through the closures of `fields.py`, called from the generated
code, so there is one implementation of each rule. The tests of `Mapper` run this code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from consumer.mapping.fields import (
    CONVERSION_ERRORS,
    Unmappable,
    attribution,
    getter,
    impression_items,
    number_converter,
    properties_getter,
    text,
)
from consumer.mapping.plan import MappingPlan, Source
from consumer.records import Failure, MappedEvent, SessionKey, Skipped, SourceRecord, Stage

MapFunction = Callable[[SourceRecord, Mapping[str, Any]], MappedEvent | Failure | Skipped]


def compile_map(plan: MappingPlan, helpers: Mapping[str, Any]) -> MapFunction:
    """The map function of `plan`. `helpers`: what the mapper keeps per instance (event ids,
    the session check, the screen, the missing-field failures, `sentAt`), by name."""
    writer = _Writer(plan)
    namespace: dict[str, Any] = {
        "_Unmappable": Unmappable,
        "_CONVERSION_ERRORS": CONVERSION_ERRORS,
        "_Failure": Failure,
        "_Skipped": Skipped,
        "_MAP": Stage.MAP,
        "_VALIDATE": Stage.VALIDATE,
        "_new": tuple.__new__,  # a NamedTuple's own __new__ is a Python function: a frame
        "_SessionKey": SessionKey,
        "_MappedEvent": MappedEvent,
        "_text": text,
        "_event_types": {},
        **helpers,
    }
    source = "\n".join(writer.function())
    namespace.update(writer.constants)
    exec(compile(source, "<generated mapper>", "exec"), namespace)
    function: MapFunction = namespace["map_record"]
    return function


class _Writer:
    def __init__(self, plan: MappingPlan) -> None:
        self.plan = plan
        self.constants: dict[str, Any] = {}

    def constant(self, value: Any) -> str:
        name = f"_k{len(self.constants)}"
        self.constants[name] = value
        return name

    def read(self, var: str, source: Source, convert: Callable[[Any], Any] | None) -> list[str]:
        """Lines that set `var` as `getter(source, convert)(value)` would."""
        paths = source.paths
        if len(paths) == 1 and len(paths[0]) == 1:
            lines = [f"{var} = value.get({paths[0][0]!r})"]
            if convert is not None and source.convert:
                lines += [f"if {var} is not None:", f"    {var} = {self.constant(convert)}({var})"]
            return lines
        return [f"{var} = {self.constant(getter(source, convert))}(value)"]

    def function(self) -> list[str]:
        plan, sources = self.plan, self.plan.sources
        body = ["name = 'eventType'"]  # what is being mapped, for the reason if it fails
        body += self.read("event_type", sources["eventType"], None)
        body += ["if event_type is None:", "    return _missing_eventType"]
        # one string object per event type: buffered events share it (54 bytes each otherwise)
        body += ["if type(event_type) is str:", "    known = _event_types.get(event_type)"]
        body += ["    if known is not None:", "        event_type = known"]
        body += ["    elif len(_event_types) < 4096:"]
        body += ["        _event_types[event_type] = event_type"]
        if plan.include is not None or plan.exclude or plan.rename:
            # first: a filtered record is skipped whatever else it holds
            body += ["if type(event_type) is not str:"]
            body += ["    return _Failure(_MAP, 'type', 'eventType: must be a string')"]
            if plan.include is not None:
                body += [f"if event_type not in {self.constant(plan.include)}:"]
                body += ["    return _Skipped(record, 'eventType is not in the include list')"]
            if plan.exclude:
                body += [f"if event_type in {self.constant(plan.exclude)}:"]
                body += ["    return _Skipped(record, 'eventType is in the exclude list')"]
            if plan.rename:
                rename = self.constant(dict(plan.rename))
                body += [f"event_type = {rename}.get(event_type, event_type)"]
        body += ["name = 'sessionId'", *self.read("session_id", sources["sessionId"], text)]
        body += ["if session_id is None:", "    return _missing_sessionId"]
        body += ["name = 'sentAt'", "sent_at = _sent_at(value)"]
        body += ["if sent_at is None:", "    return _missing_sentAt", "name = 'eventId'"]
        derived = "_event_id(record[0], record[1], record[2])"  # topic, partition, offset
        if "eventId" in sources:
            body += self.read("event_id", sources["eventId"], text)
            derived = f"event_id or {derived}"
        body += [f"event = {{'eventId': {derived}, 'eventType': event_type, 'sentAt': sent_at}}"]
        body += self.optional_fields()
        body += ["name = 'userId'"]
        if "userId" in sources:
            body += self.read("user_id", sources["userId"], text)
        else:
            body += ["user_id = None"]
        tracking = self.constant(plan.tracking_id)
        if plan.topic_tracking_ids:
            topics = self.constant(dict(plan.topic_tracking_ids))
            tracking = f"{topics}.get(record[0], {tracking})"
        return [
            "def map_record(record, value):",
            "    try:",
            *(f"        {line}" for line in body),
            "    except _Unmappable as exc:",
            "        return _Failure(exc.stage, exc.rule, exc.reason)",
            "    except _CONVERSION_ERRORS as exc:",
            "        kind = type(exc).__name__",
            "        return _Failure(_MAP, kind, f'{name}: cannot be mapped ({kind})')",
            f"    session = _new(_SessionKey, ({tracking}, user_id, session_id, 'PutEvents'))",
            "    session, violations = _session(session)",
            "    if not violations:",
            "        if _screen(event):  # the usual valid event",
            "            return _new(_MappedEvent, (record, session, event))",
            "        violations = _validate_event(event, '', properties_checked=True)",
            "        if not violations:",
            "            return _new(_MappedEvent, (record, session, event))",
            "    first = violations[0]",
            "    more = f' (and {len(violations) - 1} more)' if len(violations) > 1 else ''",
            "    return _Failure(_VALIDATE, first.rule, first.message + more)",
        ]

    def optional_fields(self) -> list[str]:
        """Fields left out when their source has no value, each set only when it has one."""
        plan, sources = self.plan, self.plan.sources
        lines: list[str] = []

        def put(key: str, name: str, read: list[str], then: str | None = None) -> None:
            lines.extend([f"name = {name!r}", *read, "if found is not None:"])
            if then is None:
                lines.append(f"    event[{key!r}] = found")
            else:  # `then` may drop the value (None)
                lines.extend([f"    found = {then}", "    if found is not None:"])
                lines.append(f"        event[{key!r}] = found")

        if (source := sources.get("eventValue")) is not None:
            put("eventValue", "eventValue", self.read("found", source, number_converter(source)))
        for name in ("itemId", "recommendationId"):
            if (source := sources.get(name)) is not None:
                put(name, name, self.read("found", source, text))
        if (source := sources.get("impression")) is not None:
            items = self.constant(impression_items(source, plan.impression_delimiter))
            put("impression", "impression", self.read("found", source, None), f"{items}(found)")
        if plan.properties_from is not None or plan.properties:
            properties = self.constant(properties_getter(plan.properties_from, plan.properties))
            put("properties", "properties", [f"found = {properties}(value)"])
        if (source := sources.get("metricAttributionSource")) is not None:
            then = f"{self.constant(attribution())}(found)"
            read = self.read("found", source, text)
            put("metricAttribution", "metricAttributionSource", read, then)
        return lines
