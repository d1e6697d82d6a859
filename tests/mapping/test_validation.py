"""Tests for the model-driven PutEvents validation.

Limits below are the documented ones, written out on purpose: if botocore's model and the docs
drift apart, these tests say so. Sensitive values carry the marker `SECRET` or `§` so every case
can also assert that no message echoes a value.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consumer.mapping.validation import (
    RESERVED_PROPERTY_KEYS,
    Violation,
    validate_event,
    validate_put_events,
)

NOW = time.time()
MARKERS = ("SECRET", "§")


def valid_event(**changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "eventId": "event-1",
        "eventType": "click",
        "eventValue": 4.5,
        "itemId": "item-SECRET",
        "properties": json.dumps({"color": "SECRET", "numberOfRatings": 3}),
        "sentAt": NOW,
        "recommendationId": "rec-1",
        "impression": ["item-SECRET", "item-2"],
        "metricAttribution": {"eventAttributionSource": "SOURCE_NAME_A"},
    }
    event.update(changes)
    return event


def valid_request(**changes: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "trackingId": "tracking-1",
        "userId": "user-SECRET",
        "sessionId": "session-SECRET",
        "eventList": [valid_event()],
    }
    request.update(changes)
    return request


def without(mapping: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if k != key}


def assert_no_values(violations: list[Violation]) -> None:
    for violation in violations:
        for marker in MARKERS:
            assert marker not in violation.message
            assert marker not in violation.path


def rules(violations: list[Violation]) -> list[tuple[str, str]]:
    return [(v.path, v.rule) for v in violations]


def too_long_properties(length: int) -> str:
    text = json.dumps({"k": ""})
    return json.dumps({"k": "§" * (length - len(text))}, ensure_ascii=False)


E0 = "eventList[0]"

# (case id, request, expected path, expected rule): exactly one violation each.
CASES: list[tuple[str, Callable[[], dict[str, Any]], str, str]] = [
    ("required", lambda: without(valid_request(), "trackingId"), "trackingId", "required"),
    ("required_null", lambda: valid_request(sessionId=None), "sessionId", "required"),
    (
        "required_nested",
        lambda: valid_request(eventList=[without(valid_event(), "sentAt")]),
        f"{E0}.sentAt",
        "required",
    ),
    ("min_length", lambda: valid_request(trackingId=""), "trackingId", "min_length"),
    ("max_length", lambda: valid_request(userId="§" * 257), "userId", "max_length"),
    ("max_length_session", lambda: valid_request(sessionId="§" * 257), "sessionId", "max_length"),
    (
        "max_length_recommendation_id",
        lambda: valid_request(eventList=[valid_event(recommendationId="r" * 41)]),
        f"{E0}.recommendationId",
        "max_length",
    ),
    (
        "max_length_impression_item",
        lambda: valid_request(eventList=[valid_event(impression=["§" * 257])]),
        f"{E0}.impression[0]",
        "max_length",
    ),
    ("min_items_events", lambda: valid_request(eventList=[]), "eventList", "min_items"),
    (
        "max_items_events",
        lambda: valid_request(eventList=[valid_event()] * 11),
        "eventList",
        "max_items",
    ),
    (
        "min_items_impressions",
        lambda: valid_request(eventList=[valid_event(impression=[])]),
        f"{E0}.impression",
        "min_items",
    ),
    (
        "max_items_impressions",
        lambda: valid_request(eventList=[valid_event(impression=["i"] * 26)]),
        f"{E0}.impression",
        "max_items",
    ),
    (
        "pattern",
        lambda: valid_request(
            eventList=[valid_event(metricAttribution={"eventAttributionSource": "   "})]
        ),
        f"{E0}.metricAttribution.eventAttributionSource",
        "pattern",
    ),
    (
        "pattern_trailing_newline",
        lambda: valid_request(
            eventList=[valid_event(metricAttribution={"eventAttributionSource": "SRC\n"})]
        ),
        f"{E0}.metricAttribution.eventAttributionSource",
        "pattern",
    ),
    ("type_string", lambda: valid_request(trackingId=12), "trackingId", "type"),
    (
        "type_float",
        lambda: valid_request(eventList=[valid_event(eventValue="4.5")]),
        f"{E0}.eventValue",
        "type",
    ),
    (
        "type_float_not_bool",
        lambda: valid_request(eventList=[valid_event(eventValue=True)]),
        f"{E0}.eventValue",
        "type",
    ),
    (
        "type_float_not_nan",
        lambda: valid_request(eventList=[valid_event(eventValue=float("nan"))]),
        f"{E0}.eventValue",
        "type",
    ),
    (
        "type_timestamp",
        lambda: valid_request(eventList=[valid_event(sentAt="2024-01-01T00:00:00Z")]),
        f"{E0}.sentAt",
        "type",
    ),
    ("type_list", lambda: valid_request(eventList=valid_event()), "eventList", "type"),
    ("type_structure", lambda: valid_request(eventList=["click"]), E0, "type"),
    ("type_optional_null", lambda: valid_request(userId=None), "userId", "type"),
    ("unknown_member", lambda: valid_request(extra="x"), "extra", "unknown_member"),
    (
        "unknown_member_event",
        lambda: valid_request(eventList=[valid_event(timestamp=NOW)]),
        f"{E0}.timestamp",
        "unknown_member",
    ),
    (
        "properties_not_json",
        lambda: valid_request(eventList=[valid_event(properties="{SECRET")]),
        f"{E0}.properties",
        "json_object",
    ),
    (
        "properties_not_object",
        lambda: valid_request(eventList=[valid_event(properties='["SECRET"]')]),
        f"{E0}.properties",
        "json_object",
    ),
    (
        "properties_nan_is_not_json",
        lambda: valid_request(eventList=[valid_event(properties='{"a": NaN}')]),
        f"{E0}.properties",
        "json_object",
    ),
    (
        "properties_too_long",
        lambda: valid_request(eventList=[valid_event(properties=too_long_properties(1025))]),
        f"{E0}.properties",
        "max_length",
    ),
    (
        "properties_empty",
        lambda: valid_request(eventList=[valid_event(properties="")]),
        f"{E0}.properties",
        "min_length",
    ),
    (
        "sent_at_millis",
        lambda: valid_request(eventList=[valid_event(sentAt=int(NOW * 1000))]),
        f"{E0}.sentAt",
        "sent_at_range",
    ),
    (
        "sent_at_negative",
        lambda: valid_request(eventList=[valid_event(sentAt=-1)]),
        f"{E0}.sentAt",
        "sent_at_range",
    ),
    (
        "sent_at_datetime_future",
        lambda: valid_request(
            eventList=[valid_event(sentAt=datetime.now(UTC) + timedelta(days=2))]
        ),
        f"{E0}.sentAt",
        "sent_at_range",
    ),
]


@pytest.mark.parametrize(
    ("build", "path", "rule"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_each_rule(build: Callable[[], dict[str, Any]], path: str, rule: str) -> None:
    violations = validate_put_events(build())
    assert rules(violations) == [(path, rule)]
    assert path in violations[0].message
    assert_no_values(violations)


@pytest.mark.parametrize("key", RESERVED_PROPERTY_KEYS)
def test_each_reserved_property_key(key: str) -> None:
    for spelling in (key, key.upper()):
        properties = json.dumps({spelling: "SECRET", "color": "SECRET"})
        violations = validate_event(valid_event(properties=properties))
        assert rules(violations) == [("event.properties", "reserved_key")]
        assert key in violations[0].message
        assert_no_values(violations)


def test_valid_request_passes() -> None:
    assert validate_put_events(valid_request()) == []


def test_minimal_request_passes() -> None:
    request = {"trackingId": "t", "sessionId": "s", "eventList": [{"eventType": "x", "sentAt": 0}]}
    assert validate_put_events(request) == []


def test_limits_are_inclusive() -> None:
    event = valid_event(
        eventType="e" * 256,
        recommendationId="r" * 40,
        properties=too_long_properties(1024),
        impression=["i" * 256] * 25,
        sentAt=NOW + 23 * 3600,
    )
    request = valid_request(trackingId="t" * 256, userId="u" * 256, eventList=[event] * 10)
    assert validate_put_events(request) == []


@pytest.mark.parametrize(
    "sent_at",
    [
        datetime.now(UTC),
        datetime.now(UTC).replace(tzinfo=None),  # naive: read as UTC, as botocore does
        datetime(2020, 1, 1, tzinfo=UTC),
        int(NOW),
    ],
    ids=["aware", "naive", "past", "int_seconds"],
)
def test_sent_at_forms_accepted(sent_at: datetime | int) -> None:
    assert validate_event(valid_event(sentAt=sent_at)) == []


def test_sent_at_datetime_before_epoch_rejected() -> None:
    violations = validate_event(valid_event(sentAt=datetime(1969, 12, 31, tzinfo=UTC)))
    assert rules(violations) == [("event.sentAt", "sent_at_range")]


def test_tuple_event_list_accepted_as_boto3_does() -> None:
    assert validate_put_events(valid_request(eventList=(valid_event(),))) == []


def test_validate_event_uses_given_path() -> None:
    violations = validate_event(without(valid_event(), "eventType"), path="eventList[3]")
    assert rules(violations) == [("eventList[3].eventType", "required")]


def test_request_must_be_a_mapping() -> None:
    assert rules(validate_put_events([])) == [("", "type")]  # type: ignore[arg-type]


def test_several_violations_are_all_reported() -> None:
    request = valid_request(trackingId="", eventList=[valid_event(sentAt=-1), {"sentAt": NOW}])
    violations = validate_put_events(request)
    assert sorted(rules(violations)) == [
        (f"{E0}.sentAt", "sent_at_range"),
        ("eventList[1].eventType", "required"),
        ("trackingId", "min_length"),
    ]
    assert_no_values(violations)


# --- property-based -------------------------------------------------------------------------

_text_256 = st.text(min_size=1, max_size=256)
_json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=20)
_property_keys = st.text(min_size=1, max_size=20).filter(
    lambda k: k.casefold() not in {r.casefold() for r in RESERVED_PROPERTY_KEYS}
)
_properties = (
    st.dictionaries(_property_keys, _json_scalars, max_size=8)
    .map(json.dumps)
    .filter(lambda s: len(s) <= 1024)
)
_attribution_source = st.from_regex(r"[\x20-\x7E]*[\x21-\x7E]+[\x20-\x7E]*", fullmatch=True).filter(
    lambda s: len(s) <= 1024
)
_sent_at = (
    st.floats(min_value=0, max_value=NOW, allow_nan=False)
    | st.integers(min_value=0, max_value=int(NOW))
    | st.datetimes(
        min_value=datetime(1970, 1, 2), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
    ).filter(lambda d: d.timestamp() <= NOW)
)


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    event: dict[str, Any] = {"eventType": draw(_text_256), "sentAt": draw(_sent_at)}
    optional: dict[str, st.SearchStrategy[Any]] = {
        "eventId": _text_256,
        "eventValue": st.floats(allow_nan=False, allow_infinity=False) | st.integers(),
        "itemId": _text_256,
        "properties": _properties,
        "recommendationId": st.text(min_size=1, max_size=40),
        "impression": st.lists(_text_256, min_size=1, max_size=25),
        "metricAttribution": st.fixed_dictionaries({"eventAttributionSource": _attribution_source}),
    }
    for name, strategy in optional.items():
        if draw(st.booleans()):
            event[name] = draw(strategy)
    return event


@settings(max_examples=200)
@given(events())
def test_any_valid_generated_event_passes(event: dict[str, Any]) -> None:
    assert validate_event(event) == []


@given(
    st.lists(events(), min_size=1, max_size=10),
    _text_256,
    st.none() | _text_256,
)
def test_any_valid_generated_request_passes(
    event_list: list[dict[str, Any]], session_id: str, user_id: str | None
) -> None:
    request: dict[str, Any] = {"trackingId": "t", "sessionId": session_id, "eventList": event_list}
    if user_id is not None:
        request["userId"] = user_id
    assert validate_put_events(request) == []


@given(st.text(min_size=257, max_size=400))
def test_messages_never_echo_sensitive_values(value: str) -> None:
    violations = validate_put_events(
        valid_request(userId=value, eventList=[valid_event(itemId=value, properties="§" + value)])
    )
    assert {v.rule for v in violations} == {"max_length", "json_object"}
    for violation in violations:
        assert value not in violation.message
