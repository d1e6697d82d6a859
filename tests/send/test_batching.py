"""Session batching: full calls, in offset order, one call in flight per session."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from consumer.records import MappedEvent, SessionKey, SourceRecord
from consumer.send.batching import Call, SessionBatcher

BODY = {"eventType": "View", "sentAt": datetime(2026, 1, 1, tzinfo=UTC)}


def event(offset: int, session: str, user: str | None = "u", partition: int = 0) -> MappedEvent:
    record = SourceRecord("t", partition, offset, None, b"x", [], None)
    return MappedEvent(record, SessionKey("tr", user, session), BODY)


def offsets(call: Call) -> list[int]:
    return [m.record.offset for m in call.events]


def test_a_full_session_goes_at_once_a_partial_one_after_the_linger() -> None:
    batcher = SessionBatcher(linger_s=0.2)
    for n in range(12):
        batcher.add(event(n, "a"), now=0.0)
    batcher.add(event(12, "b"), now=0.0)
    (call,) = batcher.ready(now=0.0, limit=10)
    assert (call.session.session_id, offsets(call)) == ("a", list(range(10)))
    assert batcher.ready(now=0.1, limit=10) == []
    (late,) = batcher.ready(now=0.2, limit=10)
    assert late.session.session_id == "b"
    batcher.complete(call.session)  # a's last two may now go, also lingered
    (rest,) = batcher.ready(now=0.2, limit=10)
    assert offsets(rest) == [10, 11]


def test_events_that_waited_behind_their_sessions_call_go_when_it_returns() -> None:
    """They lingered long enough while the call was out; a session that started lingering
    later must not hold them back (live traffic: up to a whole linger of extra latency)."""
    batcher = SessionBatcher(linger_s=0.2)
    batcher.add(event(0, "a"), now=0.0)
    (first,) = batcher.ready(now=0.2, limit=10)
    batcher.add(event(1, "a"), now=0.25)  # waits for a's call
    batcher.add(event(0, "b", partition=1), now=0.3)  # lingers until 0.5
    batcher.complete(first.session)  # back at 0.46: a's event has waited 0.21 s
    (call,) = batcher.ready(now=0.46, limit=10)
    assert (call.session.session_id, offsets(call)) == ("a", [1])
    assert batcher.ready(now=0.46, limit=10) == []
    (late,) = batcher.ready(now=0.5, limit=10)
    assert late.session.session_id == "b"


def test_one_call_in_flight_per_session() -> None:
    batcher = SessionBatcher(linger_s=0)
    for n in range(25):
        batcher.add(event(n, "a"), now=0.0)
    (first,) = batcher.ready(now=1.0, limit=10)
    assert batcher.ready(now=1.0, limit=10) == []
    batcher.complete(first.session)
    (second,) = batcher.ready(now=1.0, limit=10)
    assert offsets(second) == list(range(10, 20))


def test_limit_bounds_the_calls_released() -> None:
    batcher = SessionBatcher(linger_s=0)
    for s in "abcde":
        batcher.add(event(0, s), now=0.0)
    assert len(batcher.ready(now=1.0, limit=2)) == 2
    assert len(batcher.ready(now=1.0, limit=10)) == 3


def test_dropping_revoked_partitions_keeps_the_others_in_order() -> None:
    batcher = SessionBatcher(linger_s=0)
    for n in range(6):
        batcher.add(event(n, "a", partition=n % 2), now=0.0)
    batcher.drop({("t", 1)})
    assert len(batcher) == 3
    (call,) = batcher.ready(now=1.0, limit=10, flush=True)
    assert offsets(call) == [0, 2, 4]


@given(
    st.lists(st.tuples(st.sampled_from("abcd"), st.booleans()), max_size=200),
    st.integers(min_value=1, max_value=5),
)
def test_every_event_is_sent_once_in_session_order(
    script: list[tuple[str, bool]], limit: int
) -> None:
    """Any interleaving of arrivals and completions sends each event once, in order per session."""
    batcher = SessionBatcher(linger_s=0.5)
    in_flight: list[Call] = []
    sent: list[Call] = []
    now = 0.0
    for offset, (session, complete_one) in enumerate(script):
        now += 0.1
        batcher.add(event(offset, session), now)
        if complete_one and in_flight:
            batcher.complete(in_flight.pop(0).session)
        released = batcher.ready(now, limit)
        assert {c.session for c in released}.isdisjoint({c.session for c in in_flight})
        in_flight += released
        sent += released
    while in_flight or len(batcher):
        for call in in_flight:
            batcher.complete(call.session)
        in_flight = batcher.ready(now, limit, flush=True)
        sent += in_flight
    for session in "abcd":
        got = [o for c in sent if c.session.session_id == session for o in offsets(c)]
        assert got == [o for o, (s, _) in enumerate(script) if s == session]
    assert all(1 <= len(c.events) <= 10 for c in sent)


def test_request_omits_user_id_for_anonymous_sessions() -> None:
    batcher = SessionBatcher(linger_s=0)
    batcher.add(event(0, "s", user=None), now=0.0)
    (call,) = batcher.ready(now=0.0, limit=1, flush=True)
    request = call.request()
    assert "userId" not in request
    assert request["sessionId"] == "s" and request["trackingId"] == "tr"


def test_the_busiest_sessions_waiting_events_are_known_and_its_calls_go_first() -> None:
    batcher = SessionBatcher(linger_s=0.0)
    for n in range(35):
        batcher.add(event(n, "hot", partition=2), now=0.0)
    for n in range(12):
        batcher.add(event(100 + n, f"calm-{n}", partition=1), now=0.0)
    assert batcher.busiest == 35
    (first,) = batcher.ready(now=1.0, limit=1)
    assert first.session.session_id == "hot" and batcher.busiest == 25
    batcher.complete(first.session)  # back from its round trip, and still full
    (again,) = batcher.ready(now=1.0, limit=1)
    assert again.session.session_id == "hot"  # ahead of the sessions that waited longer
    assert batcher.busiest == 15


def item(offset: int, item_id: str) -> MappedEvent:
    record = SourceRecord("items", 0, offset, None, b"x", [], None)
    key = SessionKey("arn:aws:personalize:us-east-1:1:dataset/g/ITEMS", None, "items/0", "PutItems")
    return MappedEvent(record, key, {"itemId": item_id, "properties": f'{{"v":"{offset}"}}'})


def test_a_catalog_call_sends_only_the_last_update_of_each_id() -> None:
    batcher = SessionBatcher(linger_s=0.0)
    for offset, item_id in enumerate(["a", "b", "a", "c", "a", "b"]):
        batcher.add(item(offset, item_id), now=0.0)
    (call,) = batcher.ready(now=0.0, limit=10)
    assert [(m.event["itemId"], m.record.offset) for m in call.events] == [
        ("c", 3),
        ("a", 4),
        ("b", 5),
    ]  # kept in offset order
    assert [(old.record.offset, new.record.offset) for old, new in call.superseded] == [
        (0, 4),
        (1, 5),
        (2, 4),
    ]
    assert call.request() == {
        "datasetArn": "arn:aws:personalize:us-east-1:1:dataset/g/ITEMS",
        "items": [m.event for m in call.events],
    }


def test_interactions_are_never_superseded() -> None:
    batcher = SessionBatcher(linger_s=0.0)
    for offset in range(3):
        batcher.add(event(offset, "a"), now=0.0)
    (call,) = batcher.ready(now=0.0, limit=10)
    assert offsets(call) == [0, 1, 2] and call.superseded == ()
