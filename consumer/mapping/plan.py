"""A mapping file checked against the Avro writer schema, into the `MappingPlan` to compile.

Every path must exist in the schema (record fields, any key of a map, any branch of a union) and
end at something its PutEvents field can take; what a field needs converting per record is decided
here, once, so plain strings cost the mapper nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import fastavro

from consumer.mapping.spec import (
    EventTypeSpec,
    ImpressionSpec,
    MappingFileSpec,
    PathSpec,
    SourceSpec,
    did_you_mean,
)
from consumer.mapping.validation import RESERVED_PROPERTY_KEYS

Unit = Literal["seconds", "millis", "micros", "iso8601", "logical"]
Scalar = str | int | float | bool


@dataclass(frozen=True, slots=True)
class Source:
    """Where a value comes from: paths tried in order (the first non-null wins), or `const`."""

    paths: tuple[tuple[str, ...], ...] = ()
    const: Scalar | None = None
    #: The writer schema lets the value be something that needs converting (an int id, a numeric
    #: string, a nullable map value); False when it can pass as it is, which costs nothing.
    convert: bool = False

    def describe(self) -> str:
        """For failure reasons: the paths as the mapping file wrote them."""
        return ", ".join(".".join(p) for p in self.paths) or "const"


@dataclass(frozen=True, slots=True)
class MappingPlan:
    """A checked mapping file, for `Mapper` to compile."""

    tracking_id: str
    #: PutEvents field (userId, sessionId, eventId, eventType, sentAt, eventValue, itemId,
    #: recommendationId, impression, metricAttributionSource) -> its source.
    sources: Mapping[str, Source]
    sent_at_unit: Unit
    topic_tracking_ids: Mapping[str, str] = field(default_factory=dict)
    include: frozenset[str] | None = None
    exclude: frozenset[str] = frozenset()
    rename: Mapping[str, str] = field(default_factory=dict)
    impression_delimiter: str | None = None
    #: A map whose entries all become properties, keys as they are.
    properties_from: Source | None = None
    #: Property key (camelCase) and its source; these win over `properties_from` entries.
    properties: tuple[tuple[str, Source], ...] = ()


def plan_mapping(
    spec: MappingFileSpec, writer_schema: dict[str, Any]
) -> tuple[MappingPlan, list[tuple[str, str]]]:
    """The plan, and every problem found as (entry, message); the plan is unusable with any."""
    planner = _Planner(_Schema(writer_schema))
    return planner.plan(spec), planner.problems


def camel_case(name: str) -> str:
    """`num_ratings` -> `numRatings`, `NUMBER_OF_RATINGS` -> `numberOfRatings`, `URL` -> `url`."""
    parts = [p.lower() if p.isupper() else p for p in re.split(r"[^A-Za-z0-9]+", name) if p]
    head = parts[0][:1].lower() + parts[0][1:] if parts else ""
    return head + "".join(p[:1].upper() + p[1:] for p in parts[1:])


# -- paths against the schema ------------------------------------------------------------

_TIMES = frozenset(("timestamp-millis", "timestamp-micros"))
_TIMES |= {f"local-{t}" for t in _TIMES}
_LOGICAL = _TIMES | {"uuid", "decimal", "date", "time-millis", "time-micros"}
_NUMBERS = frozenset(("int", "long", "float", "double"))
_PLAIN = frozenset(("string", "enum"))
_TEXT = _PLAIN | {"uuid", "int", "long"}
_SCALARS = _TEXT | _NUMBERS | {"boolean"}
#: PutEvents field: (what its source may be, what passes without a conversion per record).
_TAKES = {
    **dict.fromkeys(
        ("userId", "sessionId", "eventId", "itemId", "recommendationId", "metricAttributionSource"),
        (_TEXT, _PLAIN),
    ),
    "eventType": (_PLAIN, _PLAIN),
    "eventValue": (_NUMBERS | {"string"}, _NUMBERS),
}


class _PathError(Exception):
    pass


class _Schema:
    """Resolves dotted paths as fastavro decodes records: record fields, any key of a map, any
    branch of a union (null: no value). A path cannot go into arrays."""

    def __init__(self, writer_schema: dict[str, Any]) -> None:
        root = cast(dict[str, Any], fastavro.parse_schema(writer_schema))
        self.root, self._named = root, dict(root.get("__named_schemas", {}))

    def branches(self, node: Any) -> list[Any]:
        if isinstance(node, list):
            return [branch for member in node for branch in self.branches(member)]
        if isinstance(node, str):
            return self.branches(self._named[node]) if node in self._named else [node]
        return self.branches(node["type"]) if isinstance(node["type"], (list, dict)) else [node]

    def kind(self, branch: Any) -> str:
        if isinstance(branch, str):
            return branch
        kind, logical = branch["type"], branch.get("logicalType")
        return "record" if kind in ("record", "error") else logical if logical in _LOGICAL else kind

    def kinds(self, branches: list[Any]) -> set[str]:
        return {self.kind(branch) for branch in branches}

    def inner(self, branches: list[Any], kind: str, key: str) -> list[Any]:
        """The branches of the items of arrays (`items`) or values of maps (`values`)."""
        return [b for x in branches if self.kind(x) == kind for b in self.branches(x[key])]

    def resolve(self, path: str) -> list[Any]:
        """The branches a path can end at; raises `_PathError` naming its first wrong step."""
        segments = path.split(".")
        if not all(segments):
            raise _PathError(f"{path!r} has an empty segment")
        branches = self.branches(self.root)
        for index, segment in enumerate(segments):
            records = [b for b in branches if self.kind(b) == "record"]
            found = [f["type"] for r in records for f in r["fields"] if f["name"] == segment]
            found += [b["values"] for b in branches if self.kind(b) == "map"]
            if not found:
                raise _PathError(self._dead_end(".".join(segments[:index]), segment, branches))
            branches = self.branches(found)
        return branches

    def resolve_quietly(self, path: str) -> list[Any]:
        """`resolve`, or nothing when the path is wrong (reported where it is checked)."""
        try:
            return self.resolve(path)
        except _PathError:
            return []

    def _dead_end(self, before: str, segment: str, branches: list[Any]) -> str:
        records = [b for b in branches if self.kind(b) == "record"]
        if records:
            names = " or ".join(str(r["name"]).rsplit(".", 1)[-1] for r in records)
            known = [f["name"] for r in records for f in r["fields"]]
            return f"{segment!r} is not a field of record {names}{did_you_mean(segment, known)}"
        kinds = self.kinds(branches)
        if "array" in kinds:
            return f"{before!r} is an array: a path cannot go into its items"
        return f"{before!r} is Avro {_kinds_text(kinds)}, not a record or map: no {segment!r} in it"


def _kinds_text(kinds: set[str]) -> str:
    return " or ".join(sorted(kinds - {"null"})) or "null"


class _Planner:
    """Checks every entry against the schema, collecting all problems before raising."""

    def __init__(self, schema: _Schema) -> None:
        self.schema = schema
        self.problems: list[tuple[str, str]] = []

    def plan(self, spec: MappingFileSpec) -> MappingPlan:
        f = spec.fields
        sources: dict[str, Source] = {}
        for name, (accepted, plain) in _TAKES.items():
            if (entry := getattr(f, name)) is not None:
                sources[name] = self.source(f"fields.{name}", name, entry, accepted, plain)
        accepted, hint = {
            "logical": (
                _TIMES | {"long"},
                " (strings: unit iso8601; numbers: seconds, millis, micros)",
            ),
            "iso8601": (frozenset({"string"}), ""),
        }.get(f.sentAt.unit, (_NUMBERS | {"string"}, " (Avro timestamps: give unit: logical)"))
        sources["sentAt"] = self.source(
            "fields.sentAt", f"sentAt ({f.sentAt.unit})", f.sentAt, accepted, accepted, hint
        )
        if f.impression is not None:
            sources["impression"] = self.impression(f.impression)
        self.check_filters(f.eventType, sources["eventType"])
        props = f.properties
        plan = MappingPlan(
            tracking_id=spec.trackingId,
            sources=sources,
            sent_at_unit=f.sentAt.unit,
            topic_tracking_ids={
                topic: t.trackingId
                for topic, t in spec.topics.items()
                if t.operation == "PutEvents" and t.trackingId is not None
            },
            include=frozenset(f.eventType.include) if f.eventType.include is not None else None,
            exclude=frozenset(f.eventType.exclude),
            rename=dict(f.eventType.rename),
            impression_delimiter=f.impression.delimiter if f.impression is not None else None,
            properties_from=self.properties_from(props.from_) if props and props.from_ else None,
            properties=self.properties(props.fields) if props is not None else (),
        )
        return plan

    def problem(self, loc: str, message: str) -> None:
        self.problems.append((loc, message))

    def check(
        self, loc: str, path: str, what: str, accepted: frozenset[str], hint: str = ""
    ) -> list[Any]:
        """The branches `path` can end at, if it resolves and may hold what `what` takes."""
        try:
            branches = self.schema.resolve(path)
        except _PathError as exc:
            self.problem(loc, str(exc))
            return []
        kinds = self.schema.kinds(branches)
        if not kinds & accepted:
            takes = ", ".join(sorted(accepted))
            self.problem(loc, f"{path!r} is Avro {_kinds_text(kinds)}; {what} takes {takes}{hint}")
            return []
        return branches

    def source(
        self,
        loc: str,
        what: str,
        spec: PathSpec,
        accepted: frozenset[str],
        plain: frozenset[str],
        hint: str = "",
    ) -> Source:
        """A value's source; `plain` kinds pass as they are, other `accepted` ones are converted."""
        if spec.path is None:
            const = getattr(spec, "const", None)
            if not (
                plain >= _SCALARS
                or (isinstance(const, str) if "string" in plain else type(const) in (int, float))
            ):
                self.problem(f"{loc}.const", f"{what} takes {', '.join(sorted(accepted))}")
            return Source(const=const)
        convert = False
        for index, path in enumerate(spec.path):
            where = f"{loc}.path" if spec.single else f"{loc}.path[{index}]"
            kinds = self.schema.kinds(self.check(where, path, what, accepted, hint))
            convert = convert or bool(kinds - plain - {"null"})
        return Source(paths=tuple(tuple(p.split(".")) for p in spec.path), convert=convert)

    def impression(self, spec: ImpressionSpec) -> Source:
        if spec.delimiter is not None:
            hint = " (an array needs no delimiter)"
            accepted = frozenset({"string"})
            return self.source(
                "fields.impression", "a delimited impression", spec, accepted, accepted, hint
            )
        convert = False
        for index, path in enumerate(spec.path or []):
            where = "fields.impression.path" + ("" if spec.single else f"[{index}]")
            hint = " (a delimited string needs a delimiter)"
            branches = self.check(where, path, "impression", frozenset({"array"}), hint)
            items = self.schema.kinds(self.schema.inner(branches, "array", "items"))
            if branches and not items & _TEXT:
                self.problem(where, f"{path!r} is an array of {_kinds_text(items)}, not of ids")
            convert = convert or bool(items - _PLAIN)
        return Source(paths=tuple(tuple(p.split(".")) for p in spec.path or []), convert=convert)

    def properties_from(self, path: str, lists: bool = False) -> Source:
        loc = "fields.properties.from"
        branches = self.check(loc, path, "properties.from", frozenset({"map"}))
        values = self.schema.kinds(self.schema.inner(branches, "map", "values"))
        if values - _SCALARS - {"null"} - ({"array"} if lists else set()):
            kinds = _kinds_text(values)
            self.problem(loc, f"{path!r} holds {kinds}; properties are strings, numbers, booleans")
        return Source(paths=(tuple(path.split(".")),), convert=values != {"string"})

    def properties(
        self, fields: list[str] | dict[str, SourceSpec], catalog: bool = False
    ) -> tuple[tuple[str, Source], ...]:
        """Named properties; `catalog` ones may be lists (sent `|`-separated), none reserved."""
        accepted = _SCALARS | {"array"} if catalog else _SCALARS
        entries: list[tuple[str, str, Source]] = []  # (loc, key, source)
        if isinstance(fields, list):
            for index, path in enumerate(fields):
                loc = f"fields.properties.fields[{index}]"
                self.list_items(loc, path, self.check(loc, path, "a property", accepted))
                key = camel_case(path.rsplit(".", 1)[-1])
                entries.append((loc, key, Source(paths=(tuple(path.split(".")),))))
        else:
            for key, spec in fields.items():
                loc = f"fields.properties.fields.{key}"
                if camel_case(key) != key:
                    self.problem(loc, f"property keys are camelCase: use {camel_case(key)!r}")
                entries.append((loc, key, self.source(loc, "a property", spec, accepted, accepted)))
                for path in spec.path or []:
                    self.list_items(loc, path, self.schema.resolve_quietly(path))
        reserved = set() if catalog else {k.casefold() for k in RESERVED_PROPERTY_KEYS}
        seen: dict[str, str] = {}
        for loc, key, _source in entries:
            if not key[:1].isalpha():
                self.problem(loc, f"property key {key!r} must start with a letter")
            elif key.casefold() in reserved:
                self.problem(loc, f"property key {key!r} is reserved by PutEvents")
            elif key in seen:
                self.problem(loc, f"property key {key!r} is also made by {seen[key]}")
            seen.setdefault(key, loc)
        return tuple((key, source) for _loc, key, source in entries)

    def list_items(self, loc: str, path: str, branches: list[Any]) -> None:
        """A list property (catalogs only) is sent `|`-separated: its items must be scalars."""
        items = self.schema.kinds(self.schema.inner(branches, "array", "items"))
        if items - _SCALARS - {"null"}:
            self.problem(loc, f"{path!r} is an array of {_kinds_text(items)}, not of values")

    def check_filters(self, spec: EventTypeSpec, source: Source) -> None:
        loc = "fields.eventType"
        include = set(spec.include) if spec.include is not None else None
        for value in sorted(set(spec.exclude) & (include or set())):
            self.problem(f"{loc}.exclude", f"{value!r} is also in include")
        for value in spec.rename:
            if (include is not None and value not in include) or value in spec.exclude:
                self.problem(f"{loc}.rename", f"{value!r} is filtered out, so never renamed")
        const = source.const
        if isinstance(const, str) and (
            (include is not None and const not in include) or const in spec.exclude
        ):
            self.problem(f"{loc}.const", "is filtered out: every record would be skipped")
