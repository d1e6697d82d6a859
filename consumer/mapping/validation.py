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
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

import botocore.session

from consumer.mapping.checkers import Checker, Compiler, Out, Violation, path_of
from consumer.mapping.screen import Screen
from consumer.records import OPERATIONS

__all__ = [
    "OPERATIONS",
    "RESERVED_PROPERTY_KEYS",
    "Violation",
    "check_property_keys",
    "validate_entry",
    "validate_event",
    "validate_put_events",
    "validate_request",
]

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


def validate_put_events(request: Mapping[str, Any]) -> list[Violation]:
    """Check a whole PutEvents request (trackingId, userId, sessionId, eventList)."""
    checkers = _checkers()
    if checkers.request_screen(request):
        return []
    out: list[Violation] = []
    checkers.request(request, "", "", out)
    return out


def validate_event(
    event: Mapping[str, Any], path: str = "event", *, properties_checked: bool = False
) -> list[Violation]:
    """Check one `Event`, before it is batched into a request.

    `properties_checked`: the caller encoded `properties` itself from a mapping whose keys it
    checked with `check_property_keys`, so the JSON is not parsed back (the model's length limit
    still applies). Parsing it again was the single largest cost of validating an event.
    """
    checkers = _checkers()
    if properties_checked and checkers.screen(event):
        return []
    out: list[Violation] = []
    (checkers.event_keys_checked if properties_checked else checkers.event)(event, path, "", out)
    return out


def event_screen() -> Screen:
    """`validate_event`'s fast yes (`properties_checked`), for a caller that calls it per event."""
    return _checkers().screen


def validate_request(operation: str, request: Mapping[str, Any]) -> list[Violation]:
    """Check a whole request of any of the five operations, as AWS would."""
    out: list[Violation] = []
    _operation_checkers(operation)[0](request, "", "", out)
    return out


def validate_entry(operation: str, entry: Mapping[str, Any], path: str = "") -> list[Violation]:
    """Check one entry (an item, a user, an action, an action interaction) of `operation`."""
    out: list[Violation] = []
    _operation_checkers(operation)[1](entry, path, "", out)
    return out


@cache
def _operation_checkers(operation: str) -> tuple[Checker, Checker]:
    """(request checker, entry checker) of an operation, compiled once."""
    model = botocore.session.get_session().get_service_model(SERVICE_NAME)
    input_shape = model.operation_model(operation).input_shape
    member, entry_name = OPERATIONS[operation].member, OPERATIONS[operation].entry
    compiler = Compiler(_EXTRAS)
    request = compiler.compile(input_shape)
    entry_shape = input_shape.members[member].member
    wanted = {key for key in _EXTRAS if key[0] == entry_name}
    if missing := wanted - compiler.used_extras:  # the model renamed something: say so
        raise RuntimeError(f"personalize-events model lacks members {sorted(missing)}")
    return request, compiler.compile(entry_shape)


def check_property_keys(keys: Iterable[Any], path: str = "properties") -> list[Violation]:
    """Reserved keys among the keys of a `properties` object, before it is encoded."""
    out: list[Violation] = []
    _reserved_keys(keys, path, out)
    return out


@dataclass(frozen=True, slots=True)
class _Checkers:
    request: Checker
    #: The fast yes for `request`: a new session's fields are checked with a request.
    request_screen: Screen
    event: Checker
    event_keys_checked: Checker
    #: The fast yes for `event_keys_checked`: nearly every event is valid.
    screen: Screen


@cache
def _checkers() -> _Checkers:
    """Compile once, on first use, so importing this module stays cheap."""
    model = botocore.session.get_session().get_service_model(SERVICE_NAME)
    input_shape = model.operation_model(OPERATION_NAME).input_shape
    extras: dict[tuple[str, str], Checker] = {
        ("Event", "properties"): _check_properties,
        ("Event", "sentAt"): _check_sent_at,
    }
    compiler = Compiler(extras)
    request = compiler.compile(input_shape)
    event_shape = input_shape.members["eventList"].member
    missing = set(compiler.extras) - compiler.used_extras
    if missing:  # The model renamed something: fail loudly rather than skip documented rules.
        raise RuntimeError(f"personalize-events model lacks members {sorted(missing)}")
    without_json = Compiler({k: v for k, v in extras.items() if k != ("Event", "properties")})
    return _Checkers(
        request=request,
        request_screen=compiler.screen(input_shape),
        event=compiler.compile(event_shape),
        event_keys_checked=without_json.compile(event_shape),
        screen=without_json.screen(event_shape),
    )


def _check_properties(value: str, parent: str, key: str | int, out: Out) -> None:
    """The model only says "string"; the service wants a JSON object without reserved keys."""
    parsed = _json_object(value, path_of(parent, key), out)
    if parsed is not None:
        _reserved_keys(parsed, path_of(parent, key), out)


def _check_json_object(value: str, parent: str, key: str | int, out: Out) -> None:
    """Catalog `properties` (items, users, actions): a JSON object of the dataset's fields."""
    _json_object(value, path_of(parent, key), out)


def _json_object(value: str, path: str, out: Out) -> dict[str, Any] | None:
    """`value` parsed, if it is a JSON object; otherwise why not, in `out`."""
    try:
        parsed = _JSON_DECODER.decode(value)
    except ValueError:
        out.append(Violation(path, "json_object", f"{path}: must be a JSON-encoded object"))
        return None
    if not isinstance(parsed, dict):
        msg = f"{path}: must be a JSON object, not an array or scalar"
        out.append(Violation(path, "json_object", msg))
        return None
    return parsed


def _reserved_keys(keys: Iterable[Any], path: str, out: Out) -> None:
    for name in keys:
        reserved = _RESERVED_BY_FOLDED.get(name.casefold()) if type(name) is str else None
        if reserved is not None:
            msg = f"{path}: must not contain the reserved key '{reserved}' (in any letter case)"
            out.append(Violation(path, "reserved_key", msg))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


#: Built once: `json.loads` with options builds a decoder per call, which dominated the cost.
_JSON_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _check_sent_at(value: datetime | float, parent: str, key: str | int, out: Out) -> None:
    """Reject times the service would: negative, or so far ahead they must be milliseconds."""
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        seconds = aware.timestamp()
    else:
        seconds = value  # Not float(): an absurd int would overflow; comparisons are exact.
    if 0 <= seconds <= time.time() + SENT_AT_MAX_AHEAD_S:
        return
    path = path_of(parent, key)
    if seconds < 0:
        msg = f"{path}: must be epoch seconds at or after 1970-01-01T00:00:00Z"
        out.append(Violation(path, "sent_at_range", msg))
    elif seconds > time.time() + SENT_AT_MAX_AHEAD_S:
        msg = f"{path}: must not be more than 24 h in the future (epoch seconds, not milliseconds)"
        out.append(Violation(path, "sent_at_range", msg))


#: The documented rules the model does not carry, per (structure, member).
_EXTRAS: dict[tuple[str, str], Checker] = {
    ("Event", "properties"): _check_properties,
    ("Event", "sentAt"): _check_sent_at,
    ("ActionInteraction", "properties"): _check_properties,
    ("ActionInteraction", "timestamp"): _check_sent_at,
    ("Item", "properties"): _check_json_object,
    ("User", "properties"): _check_json_object,
    ("Action", "properties"): _check_json_object,
}
