"""Validation of PutEvents requests against botocore's own service model.

Limits come from the `personalize-events` model shipped with botocore, so they follow the SDK
rather than a hand-copied table. The model is compiled once into a tree of small checker
closures; a call then walks only the values, with no model lookups.

Two value forms are accepted: the JSON wire form (`sentAt` as epoch seconds) and the boto3
parameter form (`sentAt` as a `datetime`). A required member set to `None` counts as missing; an
optional one is a type error, as boto3 rejects it client-side.

Messages name the field path and the rule, never the value: the model marks user ids, item ids
and properties as sensitive.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

import botocore.session

SERVICE_NAME = "personalize-events"
OPERATION_NAME = "PutEvents"

#: Keys the service reserves inside `properties` (compared case-insensitively).
RESERVED_PROPERTY_KEYS = (
    "userId",
    "sessionId",
    "eventType",
    "timestamp",
    "recommendationId",
    "impression",
)
_RESERVED_BY_FOLDED = {key.casefold(): key for key in RESERVED_PROPERTY_KEYS}

#: Later than this ahead of now, `sentAt` is almost surely epoch milliseconds.
SENT_AT_MAX_AHEAD_S = 24 * 3600.0

_MAX_NAME_IN_MESSAGE = 64


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule; safe to log because it never carries the offending value."""

    path: str
    rule: str
    message: str


_Out = list[Violation]
#: A checker gets its parent's path and its own key; it builds its path only to report.
_Checker = Callable[[Any, str, "str | int", _Out], None]


def validate_put_events(request: Mapping[str, Any]) -> list[Violation]:
    """Check a whole PutEvents request (trackingId, userId, sessionId, eventList)."""
    out: list[Violation] = []
    _checkers().request(request, "", "", out)
    return out


def validate_event(
    event: Mapping[str, Any], path: str = "event", *, properties_checked: bool = False
) -> list[Violation]:
    """Check one `Event`, before it is batched into a request.

    `properties_checked`: the caller encoded `properties` itself from a mapping whose keys it
    checked with `check_property_keys`, so the JSON is not parsed back (the model's length limit
    still applies). Parsing it again was the single largest cost of validating an event.
    """
    out: list[Violation] = []
    checkers = _checkers()
    (checkers.event_keys_checked if properties_checked else checkers.event)(event, path, "", out)
    return out


def check_property_keys(keys: Iterable[Any], path: str = "properties") -> list[Violation]:
    """Reserved keys among the keys of a `properties` object, before it is encoded."""
    out: list[Violation] = []
    _reserved_keys(keys, path, out)
    return out


@dataclass(frozen=True, slots=True)
class _Checkers:
    request: _Checker
    event: _Checker
    event_keys_checked: _Checker


@cache
def _checkers() -> _Checkers:
    """Compile once, on first use, so importing this module stays cheap."""
    model = botocore.session.get_session().get_service_model(SERVICE_NAME)
    input_shape = model.operation_model(OPERATION_NAME).input_shape
    extras: dict[tuple[str, str], _Checker] = {
        ("Event", "properties"): _check_properties,
        ("Event", "sentAt"): _check_sent_at,
    }
    compiler = _Compiler(extras)
    request = compiler.compile(input_shape)
    event_shape = input_shape.members["eventList"].member
    missing = set(compiler.extras) - compiler.used_extras
    if missing:  # The model renamed something: fail loudly rather than skip documented rules.
        raise RuntimeError(f"personalize-events model lacks members {sorted(missing)}")
    without_json = _Compiler({k: v for k, v in extras.items() if k != ("Event", "properties")})
    return _Checkers(
        request=request,
        event=compiler.compile(event_shape),
        event_keys_checked=without_json.compile(event_shape),
    )


def _check_properties(value: str, parent: str, key: str | int, out: _Out) -> None:
    """The model only says "string"; the service wants a JSON object without reserved keys."""
    path = _path(parent, key)
    try:
        parsed = _JSON_DECODER.decode(value)
    except ValueError:
        out.append(Violation(path, "json_object", f"{path}: must be a JSON-encoded object"))
        return
    if not isinstance(parsed, dict):
        msg = f"{path}: must be a JSON object, not an array or scalar"
        out.append(Violation(path, "json_object", msg))
        return
    _reserved_keys(parsed, path, out)


def _reserved_keys(keys: Iterable[Any], path: str, out: _Out) -> None:
    for name in keys:
        reserved = _RESERVED_BY_FOLDED.get(name.casefold()) if type(name) is str else None
        if reserved is not None:
            msg = f"{path}: must not contain the reserved key '{reserved}' (in any letter case)"
            out.append(Violation(path, "reserved_key", msg))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


#: Built once: `json.loads` with options builds a decoder per call, which dominated the cost.
_JSON_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _check_sent_at(value: datetime | float, parent: str, key: str | int, out: _Out) -> None:
    """Reject times the service would: negative, or so far ahead they must be milliseconds."""
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        seconds = aware.timestamp()
    else:
        seconds = value  # Not float(): an absurd int would overflow; comparisons are exact.
    if 0 <= seconds <= time.time() + SENT_AT_MAX_AHEAD_S:
        return
    path = _path(parent, key)
    if seconds < 0:
        msg = f"{path}: must be epoch seconds at or after 1970-01-01T00:00:00Z"
        out.append(Violation(path, "sent_at_range", msg))
    elif seconds > time.time() + SENT_AT_MAX_AHEAD_S:
        msg = f"{path}: must not be more than 24 h in the future (epoch seconds, not milliseconds)"
        out.append(Violation(path, "sent_at_range", msg))


class _Compiler:
    """Turns botocore shapes into checker closures; one checker per (shape, extras) pair."""

    def __init__(self, extras: Mapping[tuple[str, str], _Checker]) -> None:
        self.extras = dict(extras)
        self.used_extras: set[tuple[str, str]] = set()
        self._memo: dict[str, _Checker] = {}

    def compile(self, shape: Any) -> _Checker:
        name: str = shape.name
        checker = self._memo.get(name)
        if checker is None:
            checker = self._build(shape)
            self._memo[name] = checker
        return checker

    def _build(self, shape: Any) -> _Checker:
        type_name: str = shape.type_name
        meta: Mapping[str, Any] = shape.metadata
        if type_name == "structure":
            return self._structure(shape)
        if type_name == "list":
            return _list_checker(self.compile(shape.member), meta.get("min"), meta.get("max"))
        if type_name == "string":
            return _string_checker(meta, shape.enum)
        if type_name in ("float", "double", "integer", "long"):
            integral = type_name in ("integer", "long")
            return _number_checker(integral, meta.get("min"), meta.get("max"))
        if type_name == "boolean":
            return _boolean_checker
        if type_name == "timestamp":
            return _timestamp_checker
        raise NotImplementedError(f"shape type {type_name!r} ({shape.name}) is not supported")

    def _structure(self, shape: Any) -> _Checker:
        members: dict[str, _Checker] = {}
        for member_name, member_shape in shape.members.items():
            base = self.compile(member_shape)
            extra = self.extras.get((shape.name, member_name))
            if extra is not None:
                self.used_extras.add((shape.name, member_name))
                base = _chain(base, extra)
            members[member_name] = base
        return _structure_checker(members, tuple(shape.required_members))


def _chain(base: _Checker, extra: _Checker) -> _Checker:
    """Run a documented rule only once the model's own checks passed (so its type is known)."""

    def check(value: Any, parent: str, key: str | int, out: _Out) -> None:
        before = len(out)
        base(value, parent, key, out)
        if len(out) == before:
            extra(value, parent, key, out)

    return check


def _path(parent: str, key: str | int) -> str:
    if type(key) is int:
        return f"{parent}[{key}]"
    if not parent:
        return str(key)
    return f"{parent}.{key}" if key != "" else parent


def _label(path: str) -> str:
    return path or "request"


def _safe_name(key: object) -> str:
    """Member names are not user data, but an unknown key could be anything: bound it."""
    text = key if isinstance(key, str) else repr(type(key))
    return text if len(text) <= _MAX_NAME_IN_MESSAGE else text[:_MAX_NAME_IN_MESSAGE] + "..."


def _structure_checker(members: Mapping[str, _Checker], required: tuple[str, ...]) -> _Checker:
    def check(value: Any, parent: str, key: str | int, out: _Out) -> None:
        path = _path(parent, key)
        if type(value) is not dict and not isinstance(value, Mapping):
            out.append(Violation(path, "type", f"{_label(path)}: must be an object"))
            return
        for name, item in value.items():
            checker = members.get(name)
            if checker is not None:
                if item is not None:
                    checker(item, path, name, out)
                elif name not in required:
                    sub = _path(path, name)
                    msg = f"{sub}: must not be null (omit the member instead)"
                    out.append(Violation(sub, "type", msg))
            else:
                sub = _path(path, _safe_name(name))
                out.append(Violation(sub, "unknown_member", f"{sub}: is not a known member"))
        for name in required:
            if value.get(name) is None:
                sub = _path(path, name)
                out.append(Violation(sub, "required", f"{sub}: is required"))

    return check


def _list_checker(element: _Checker, min_items: int | None, max_items: int | None) -> _Checker:
    def check(value: Any, parent: str, key: str | int, out: _Out) -> None:
        path = _path(parent, key)
        if not isinstance(value, (list, tuple)):
            out.append(Violation(path, "type", f"{_label(path)}: must be a list"))
            return
        count = len(value)
        if min_items is not None and count < min_items:
            msg = f"{_label(path)}: must have at least {min_items} item(s)"
            out.append(Violation(path, "min_items", msg))
        if max_items is not None and count > max_items:
            msg = f"{_label(path)}: must have at most {max_items} item(s)"
            out.append(Violation(path, "max_items", msg))
        for index, item in enumerate(value):
            if item is not None:
                element(item, path, index, out)
            else:
                sub = _path(path, index)
                out.append(Violation(sub, "type", f"{sub}: must not be null"))

    return check


def _string_checker(meta: Mapping[str, Any], enum: list[str]) -> _Checker:
    min_len: int | None = meta.get("min")
    max_len: int | None = meta.get("max")
    source: str | None = meta.get("pattern")
    pattern = re.compile(_ecma_anchors(source)) if source is not None else None
    allowed = frozenset(enum)

    def check(value: Any, parent: str, key: str | int, out: _Out) -> None:
        if not isinstance(value, str):
            path = _path(parent, key)
            out.append(Violation(path, "type", f"{path}: must be a string"))
            return
        length = len(value)
        if (
            (min_len is None or length >= min_len)
            and (max_len is None or length <= max_len)
            and (pattern is None or pattern.search(value) is not None)
            and (not allowed or value in allowed)
        ):
            return
        path = _path(parent, key)
        if min_len is not None and length < min_len:
            msg = f"{path}: must be at least {min_len} character(s) long"
            out.append(Violation(path, "min_length", msg))
        if max_len is not None and length > max_len:
            msg = f"{path}: must be at most {max_len} character(s) long"
            out.append(Violation(path, "max_length", msg))
        if pattern is not None and pattern.search(value) is None:
            out.append(Violation(path, "pattern", f"{path}: must match the pattern {source}"))
        if allowed and value not in allowed:
            out.append(Violation(path, "enum", f"{path}: must be one of {sorted(allowed)}"))

    return check


def _ecma_anchors(pattern: str) -> str:
    r"""ECMAScript patterns: `$` ends the string, in Python it also matches before `\n`."""
    chars: list[str] = []
    escaped = in_class = False
    for char in pattern:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "[":
            in_class = True
        elif char == "]":
            in_class = False
        elif char == "$" and not in_class:
            chars.append(r"\Z")
            continue
        chars.append(char)
    return "".join(chars)


def _is_number(value: Any) -> bool:
    """A finite int or float, bool excluded; ints are never converted, so size cannot overflow."""
    kind = type(value)
    if kind is float:
        return math.isfinite(value)
    if kind is int:
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, int) and not isinstance(value, bool)


def _number_checker(integral: bool, low: float | None, high: float | None) -> _Checker:
    kind = "an integer" if integral else "a finite number"

    def check(value: Any, parent: str, key: str | int, out: _Out) -> None:
        if (
            _is_number(value)
            and (not integral or isinstance(value, int))
            and (low is None or value >= low)
            and (high is None or value <= high)
        ):
            return
        path = _path(parent, key)
        if not _is_number(value) or (integral and not isinstance(value, int)):
            out.append(Violation(path, "type", f"{path}: must be {kind}"))
            return
        if low is not None and value < low:
            out.append(Violation(path, "min_value", f"{path}: must be at least {low}"))
        if high is not None and value > high:
            out.append(Violation(path, "max_value", f"{path}: must be at most {high}"))

    return check


def _boolean_checker(value: Any, parent: str, key: str | int, out: _Out) -> None:
    if not isinstance(value, bool):
        path = _path(parent, key)
        out.append(Violation(path, "type", f"{path}: must be a boolean"))


def _timestamp_checker(value: Any, parent: str, key: str | int, out: _Out) -> None:
    if isinstance(value, datetime):
        return
    if not _is_number(value):
        path = _path(parent, key)
        msg = f"{path}: must be epoch seconds (number) or a datetime"
        out.append(Violation(path, "type", msg))
