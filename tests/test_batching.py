"""Grouping events into PutEvents calls."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from consumer.batching import plan_calls
from consumer.records import MappedEvent, SessionKey, SourceRecord


def event(offset: int, session: str, user: str | None = "u") -> MappedEvent:
    record = SourceRecord("t", 0, offset, None, b"x", [], None)
    body = {"eventType": "View", "sentAt": datetime(2026, 1, 1, tzinfo=UTC)}
    return MappedEvent(record, SessionKey("tr", user, session), body)


@given(st.lists(st.sampled_from(["a", "b", "c", "d"]), max_size=120))
def test_calls_are_per_session_full_and_in_offset_order(sessions: list[str]) -> None:
    events = [event(i, s) for i, s in enumerate(sessions)]
    calls = plan_calls(events)
    assert sorted(m.record.offset for c in calls for m in c.events) == list(range(len(events)))
    for call in calls:
        assert 1 <= len(call.events) <= 10
        assert {m.session for m in call.events} == {call.session}
    for session in set(sessions):
        of_session = [c for c in calls if c.session.session_id == session]
        offsets = [m.record.offset for c in of_session for m in c.events]
        assert offsets == sorted(offsets)
        assert all(len(c.events) == 10 for c in of_session[:-1])  # only the last may be short


def test_request_omits_user_id_for_anonymous_sessions() -> None:
    (call,) = plan_calls([event(0, "s", user=None)])
    request = call.request()
    assert "userId" not in request
    assert request["sessionId"] == "s" and request["trackingId"] == "tr"
