"""Topics that feed the four operations besides PutEvents: PutItems, PutUsers, PutActions and
PutActionInteractions, each from the `topics` entries of the mapping file that name it.

A topic's entry gives its operation, its target (`datasetArn`, or `trackingId`), the Avro schema of
its records and its `fields`, in the same mapping language as PutEvents. Everything is checked
at start-up against that schema and botocore's model, and reported with every other problem of
the file. An action interaction is mapped as an event (the same fields, ids derived the same way)
and then takes the operation's names: `itemId` becomes `actionId`, `sentAt` becomes `timestamp`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from consumer.mapping.fields import (
    CONVERSION_ERRORS,
    Getter,
    Unmappable,
    getter,
    properties_getter,
    text,
)
from consumer.mapping.mapper import Mapper
from consumer.mapping.plan import _PLAIN, _TEXT, MappingPlan, Source, _Planner, _Schema
from consumer.mapping.spec import (
    ActionInteractionFieldsSpec,
    CatalogFieldsSpec,
    FieldsSpec,
    MappingFileSpec,
    TopicSpec,
)
from consumer.mapping.validation import validate_entry, validate_request
from consumer.records import (
    OPERATIONS,
    Failure,
    MappedEvent,
    SessionKey,
    Skipped,
    SourceRecord,
    Stage,
)

Outcome = MappedEvent | Failure | Skipped
_FieldsSpec = TypeVar("_FieldsSpec", CatalogFieldsSpec, ActionInteractionFieldsSpec)
#: The id each catalog operation's entries carry.
CATALOG_IDS = {"PutItems": "itemId", "PutUsers": "userId", "PutActions": "actionId"}


@dataclass(frozen=True, slots=True)
class RoutePlan:
    """A topic that feeds an operation other than PutEvents, checked against its schema."""

    topic: str
    operation: str
    target: str
    #: The topic's Avro schema (JSON), read from the file the entry names.
    schema: dict[str, Any] | None
    schema_file: Path | None
    id_source: Source | None = None  # catalog: the entry's id
    properties_from: Source | None = None
    properties: tuple[tuple[str, Source], ...] = ()
    events: MappingPlan | None = None  # action interactions: planned as events


def plan_routes(
    spec: MappingFileSpec, base: Path, load_schema: Any
) -> tuple[dict[str, RoutePlan], list[tuple[str, str]]]:
    """Routes of the file's non-PutEvents topics, and every problem as (entry, message).

    `load_schema(path)` reads an Avro schema file (ValueError says why it can't).
    """
    routes: dict[str, RoutePlan] = {}
    problems: list[tuple[str, str]] = []
    for topic, entry in spec.topics.items():
        loc = f"topics.{topic}"
        if entry.operation == "PutEvents":
            for key in ("datasetArn", "schema", "fields"):
                if getattr(entry, "schema_" if key == "schema" else key) is not None:
                    problems.append((f"{loc}.{key}", "PutEvents topics use the top-level fields"))
            continue
        route, found = _plan_route(topic, entry, base, load_schema)
        problems += [(f"{loc}.{where}" if where else loc, message) for where, message in found]
        if route is not None:
            routes[topic] = route
    return routes, problems


def _plan_route(
    topic: str, entry: TopicSpec, base: Path, load_schema: Any
) -> tuple[RoutePlan | None, list[tuple[str, str]]]:
    operation, problems = entry.operation, []
    target_key = OPERATIONS[operation].target
    other = "datasetArn" if target_key == "trackingId" else "trackingId"
    target = entry.datasetArn if target_key == "datasetArn" else entry.trackingId
    if getattr(entry, other) is not None:
        problems.append((other, f"{operation} takes {target_key}, not {other}"))
    if target is None:
        problems.append((target_key, f"is required for {operation}"))
    else:
        member = OPERATIONS[operation].member
        request = {target_key: target, member: [_PLACEHOLDERS[operation]]}
        problems += [(target_key, v.message) for v in validate_request(operation, request)]
    schema, schema_file = None, None
    if entry.schema_ is None:
        problems.append(("schema", "is required: the Avro schema of the topic's records"))
    else:
        schema_file = (base / entry.schema_).resolve()
        try:
            schema = load_schema(schema_file)
        except ValueError as exc:
            problems.append(("schema", str(exc)))
    if entry.fields is None:
        problems.append(("fields", f"is required: how records become {operation} entries"))
    if schema is None or entry.fields is None:
        if entry.fields is not None:  # what is wrong with the fields, whatever else is
            if operation == "PutActionInteractions":
                problems += _fields_spec(ActionInteractionFieldsSpec, entry.fields)[1]
            else:
                problems += _fields_spec(CatalogFieldsSpec, entry.fields)[1]
        return None, problems
    if operation == "PutActionInteractions":
        route, found = _plan_interactions(topic, target or "", schema, schema_file, entry.fields)
    else:
        route, found = _plan_catalog(
            topic, operation, target or "", schema, schema_file, entry.fields
        )
    problems += found
    return (None if problems else route), problems


def _plan_catalog(
    topic: str,
    operation: str,
    target: str,
    schema: dict[str, Any],
    schema_file: Path | None,
    fields: dict[str, Any],
) -> tuple[RoutePlan | None, list[tuple[str, str]]]:
    spec, problems = _fields_spec(CatalogFieldsSpec, fields)
    if spec is None:
        return None, problems
    id_name = CATALOG_IDS[operation]
    problems = [
        (f"fields.{name}", f"{operation} entries have no {name} (they take {id_name})")
        for name in CATALOG_IDS.values()
        if name != id_name and getattr(spec, name) is not None
    ]
    id_spec = getattr(spec, id_name)
    if id_spec is None:
        return None, [*problems, (f"fields.{id_name}", "is required")]
    planner = _Planner(_Schema(schema))
    id_source = planner.source(f"fields.{id_name}", id_name, id_spec, _TEXT, _PLAIN)
    props = spec.properties
    route = RoutePlan(
        topic=topic,
        operation=operation,
        target=target,
        schema=schema,
        schema_file=schema_file,
        id_source=id_source,
        properties_from=(
            planner.properties_from(props.from_, lists=True) if props and props.from_ else None
        ),
        properties=planner.properties(props.fields, catalog=True) if props else (),
    )
    problems += planner.problems
    return (None if problems else route), problems


#: Event names of a mapping, as an action interaction names them.
_RENAMED = {"sentAt": "timestamp", "itemId": "actionId"}


def _plan_interactions(
    topic: str,
    target: str,
    schema: dict[str, Any],
    schema_file: Path | None,
    fields: dict[str, Any],
) -> tuple[RoutePlan | None, list[tuple[str, str]]]:
    spec, problems = _fields_spec(ActionInteractionFieldsSpec, fields)
    if spec is None:
        return None, problems
    as_events = FieldsSpec.model_construct(
        userId=spec.userId,
        sessionId=spec.sessionId,
        eventId=spec.eventId,
        eventType=spec.eventType,
        sentAt=spec.timestamp,
        itemId=spec.actionId,
        recommendationId=spec.recommendationId,
        impression=spec.impression,
        properties=spec.properties,
    )
    planner = _Planner(_Schema(schema))
    plan = planner.plan(
        MappingFileSpec.model_construct(version=1, trackingId=target, topics={}, fields=as_events)
    )
    problems = [(_renamed(loc), message) for loc, message in planner.problems]
    route = RoutePlan(topic, "PutActionInteractions", target, schema, schema_file, events=plan)
    return (None if problems else route), problems


def _fields_spec(
    spec: type[_FieldsSpec], fields: dict[str, Any]
) -> tuple[_FieldsSpec | None, list[tuple[str, str]]]:
    """The topic's `fields` as `spec`, or what is wrong with them."""
    try:
        return spec.model_validate(fields), []
    except ValidationError as exc:
        return None, [(_loc("fields", e["loc"]), e["msg"]) for e in exc.errors()]


def _renamed(text: str) -> str:
    for old, new in _RENAMED.items():
        text = text.replace(old, new)
    return text


def _loc(prefix: str, parts: tuple[Any, ...]) -> str:
    kept = [p for p in parts if p not in ("list[str]", "dict[str,SourceSpec]")]
    return prefix + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in kept)


_PLACEHOLDERS: dict[str, dict[str, Any]] = {
    "PutItems": {"itemId": "placeholder"},
    "PutUsers": {"userId": "placeholder"},
    "PutActions": {"actionId": "placeholder"},
    "PutActionInteractions": {
        "actionId": "placeholder",
        "sessionId": "placeholder",
        "timestamp": 0,
        "eventType": "placeholder",
    },
}


class EntryMapper:
    """Maps a route's records to entries of its operation (or a `Failure`, or `Skipped`)."""

    def __init__(self, route: RoutePlan) -> None:
        self.route = route
        self.operation = route.operation
        self._target = route.target
        self._keys: dict[tuple[str, int], SessionKey] = {}
        self._events = Mapper(route.events) if route.events is not None else None
        self._id_name = CATALOG_IDS.get(route.operation, "")
        self._id: Getter | None = None
        self._properties: Getter | None = None
        if route.id_source is not None:
            self._id = getter(route.id_source, text)
            self._missing = Failure(
                Stage.MAP, "required", f"{self._id_name}: no value at {route.id_source.describe()}"
            )
            if route.properties_from is not None or route.properties:
                self._properties = properties_getter(
                    route.properties_from, route.properties, catalog=True
                )

    def key(self, record: SourceRecord) -> SessionKey:
        """One key per source partition: its entries go in offset order, one call at a time."""
        tp = (record.topic, record.partition)
        found = self._keys.get(tp)
        if found is None:
            name = f"{record.topic}/{record.partition}"
            found = self._keys[tp] = SessionKey(self._target, None, name, self.operation)
        return found

    def map(
        self, record: SourceRecord, value: Mapping[str, Any]
    ) -> MappedEvent | Failure | Skipped:
        if self._events is not None:
            return self._interaction(record, value)
        assert self._id is not None
        name = self._id_name
        try:
            found = self._id(value)
            if found is None:
                return self._missing
            entry: dict[str, Any] = {name: found}
            if self._properties is not None:
                name = "properties"
                properties = self._properties(value)
                if properties is not None:
                    entry["properties"] = properties
        except Unmappable as exc:
            return Failure(exc.stage, exc.rule, exc.reason)
        except CONVERSION_ERRORS as exc:
            kind = type(exc).__name__
            return Failure(Stage.MAP, kind, f"{name}: cannot be mapped ({kind})")
        return self._checked(record, entry)

    def _interaction(
        self, record: SourceRecord, value: Mapping[str, Any]
    ) -> MappedEvent | Failure | Skipped:
        assert self._events is not None
        outcome = self._events.map(record, value)
        if isinstance(outcome, Failure):
            return Failure(outcome.stage, outcome.error_class, _renamed(outcome.reason))
        if not isinstance(outcome, MappedEvent):
            return outcome
        entry = dict(outcome.event)
        action = entry.pop("itemId", None)
        if action is None:
            return Failure(Stage.MAP, "required", "actionId: no value")
        entry["actionId"] = action
        entry["timestamp"] = entry.pop("sentAt")
        entry["sessionId"] = outcome.session.session_id
        if outcome.session.user_id is not None:
            entry["userId"] = outcome.session.user_id
        return self._checked(record, entry)

    def _checked(self, record: SourceRecord, entry: dict[str, Any]) -> MappedEvent | Failure:
        violations = validate_entry(self.operation, entry)
        if violations:
            first = violations[0]
            more = f" (and {len(violations) - 1} more)" if len(violations) > 1 else ""
            return Failure(Stage.VALIDATE, first.rule, first.message + more)
        return MappedEvent(record, self.key(record), entry)
