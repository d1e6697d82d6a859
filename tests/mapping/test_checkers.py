"""The screen in front of event validation: its fast yes is never wrong, and it says yes to the
valid events that make up nearly all the traffic (else it would save nothing)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from consumer.mapping.validation import _checkers, validate_event
from tests.mapping.test_validation import events

_breakages: list[tuple[str, Any]] = [
    ("eventType", ""),
    ("eventType", "x" * 257),
    ("eventType", 5),
    ("eventId", None),
    ("itemId", ["a"]),
    ("recommendationId", "r" * 41),
    ("sentAt", -1),
    ("sentAt", 4e12),
    ("sentAt", "yesterday"),
    ("eventValue", "high"),
    ("impression", []),
    ("impression", ["i"] * 26),
    ("metricAttribution", {"eventAttributionSource": ""}),
    ("unknownMember", "x"),
]


@settings(max_examples=300)
@given(events(), st.lists(st.sampled_from(_breakages), max_size=2), st.booleans())
def test_the_screen_says_yes_only_when_the_full_check_finds_nothing(
    event: dict[str, Any], breakages: list[tuple[str, Any]], drop_event_type: bool
) -> None:
    for name, value in breakages:
        event[name] = value
    if drop_event_type:
        event.pop("eventType", None)
    full: list[Any] = []
    _checkers().event_keys_checked(event, "event", "", full)
    if _checkers().screen(event):
        assert full == []
    assert validate_event(event, properties_checked=True) == full


@settings(max_examples=200)
@given(events())
def test_valid_events_pass_the_screen(event: dict[str, Any]) -> None:
    assert _checkers().screen(event)
