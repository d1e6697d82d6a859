"""Delivery with an in-memory wire: calls leave at once with no thread of ours, retries and rate
tokens are timers, bisection keeps a call's events in order, cancel stops what it names."""

from __future__ import annotations

import json
import time
from typing import Any

from botocore.exceptions import ClientError

from consumer.ops.metrics import Metrics
from consumer.records import MappedEvent, SessionKey, SourceRecord
from consumer.send.batching import Call, latest_only
from consumer.send.crt import Answer
from consumer.send.delivery import Completion, Delivery
from consumer.send.flow import AdaptiveLimit, RateLimiter

SESSION = SessionKey("tracker", None, "s")


class Wire:
    """Answers what the test scripts: per call in order, an HTTP status (200, or an error code
    for `errors` to turn into boto3's exception), or nothing until `answer_all`."""

    def __init__(self, script: list[str] | None = None, reject: set[str] | None = None) -> None:
        self.script = list(script or [])
        self.reject = reject or set()  # eventIds the service refuses (InvalidInputException)
        self.sent: list[list[str]] = []  # eventIds of each call, in the order they left
        self.operations: list[str] = []  # the operation of each call
        self.held: list[Any] = []
        self.answers: list[Answer] = []
        self.hold = False
        self.closed = False

    def send(self, body: bytes, tag: Any, operation: str = "PutEvents") -> None:
        request = json.loads(body)
        entries = request["eventList"] if operation == "PutEvents" else request["items"]
        ids = [e.get("eventId") or e["itemId"] for e in entries]
        self.sent.append(ids)
        self.operations.append(operation)
        if self.hold:
            self.held.append(tag)
        elif self.reject & set(ids):
            self.answers.append(Answer(tag, 400, {"code": "InvalidInputException"}))
        else:
            code = self.script.pop(0) if self.script else "200"
            status = 200 if code == "200" else 400
            self.answers.append(Answer(tag, status, {"code": code}))

    def answer_all(self, error: str = "") -> None:
        for tag in self.held:
            self.answers.append(Answer(tag, 0 if error else 200, error=error))
        self.held.clear()

    def drain(self, timeout_s: float) -> list[Answer]:
        answers, self.answers = self.answers, []
        return answers

    def close(self) -> None:
        self.closed = True
        self.answer_all(error="AWS_ERROR_HTTP_CONNECTION_CLOSED")


def errors(status: int, headers: dict[str, str], body: bytes) -> ClientError:
    code = headers["code"]
    response: Any = {"Error": {"Code": code, "Message": f"{code}!"}}
    response["ResponseMetadata"] = {"HTTPStatusCode": status}
    return ClientError(response, "PutEvents")


def call(first: int, count: int, partition: int = 0) -> Call:
    events = []
    for n in range(first, first + count):
        record = SourceRecord("t", partition, n, None, b"", [], None)
        events.append(
            MappedEvent(record, SESSION, {"eventId": f"e{n}", "eventType": "V", "sentAt": 1})
        )
    return Call(SESSION, tuple(events))


def delivery(wire: Wire, rate: float | None = None, metrics: Metrics | None = None) -> Delivery:
    limit = AdaptiveLimit(8, cooldown_s=0)
    return Delivery(
        wire, errors, limit, RateLimiter(rate), metrics or Metrics(), max_backoff_s=0.01
    )


def collect(sender: Delivery, count: int, within_s: float = 10.0) -> list[Completion]:
    """Completions until `count` calls finished (the in-memory wire answers at once, so this
    turns until the timers of retries and rate tokens are due)."""
    done: list[Completion] = []
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        done += sender.completions(0.005)
        if len(done) == count:
            return done
    raise AssertionError(f"{len(done)} of {count} calls finished within {within_s} s")


def test_calls_leave_at_once_and_close_ends_them_leaving_their_events_unsent() -> None:
    wire = Wire()
    wire.hold = True  # an endpoint that does not answer
    sender = delivery(wire)
    calls = [call(n * 10, 1, partition=n % 2) for n in range(5)]
    for each in calls:
        sender.submit(each)
    assert len(wire.sent) == 5 and sender.in_flight == 5  # all on the wire, no thread of ours
    assert sender.completions() == []

    sender.close()
    done = collect(sender, 5)
    assert {id(c.call) for c in done} == {id(c) for c in calls}
    assert all(c.result is not None and c.result.unsent == list(c.call.events) for c in done)
    assert sender.in_flight == 0 and wire.closed


def test_cancel_by_partition_stops_only_the_calls_that_touch_it() -> None:
    wire = Wire(script=["ThrottlingException"] * 50)  # both keep being retried
    sender = delivery(wire)
    sender.submit(call(0, 1, partition=0))
    sender.submit(call(1, 1, partition=1))
    sender.completions(0.02)
    sender.cancel([("t", 1)])
    (finished,) = collect(sender, 1)
    assert finished.call.events[0].record.partition == 1
    assert finished.result is not None and len(finished.result.unsent) == 1
    assert sender.in_flight_for([("t", 0)]) == 1


def test_bad_events_are_found_by_halving_and_the_rest_go_in_order() -> None:
    wire = Wire(reject={"e3", "e7"})
    (done,) = collect(_submitted(delivery(wire), call(0, 10)), 1)
    assert done.result is not None
    assert [m.event["eventId"] for m in done.result.accepted] == [
        f"e{n}" for n in range(10) if n not in (3, 7)
    ]
    assert sorted(m.event["eventId"] for m, _ in done.result.rejected) == ["e3", "e7"]
    assert all(f.reason == "InvalidInputException!" for _, f in done.result.rejected)
    accepted_order = [ids for ids in wire.sent if not {"e3", "e7"} & set(ids)]
    flat = [i for ids in accepted_order for i in ids]
    assert flat == sorted(flat, key=lambda i: int(i[1:]))  # halves left in order, one at a time


def test_an_event_json_cannot_carry_is_rejected_alone_and_the_rest_are_sent() -> None:
    """A lone surrogate (a mapping constant written with a `\\ud800` escape) makes orjson
    refuse the body: that event is dead-lettered, never read as missing credentials."""
    wire = Wire()
    bad = call(0, 6)
    events = list(bad.events)
    events[4] = events[4]._replace(event={**events[4].event, "itemId": "item-\ud800"})
    (done,) = collect(_submitted(delivery(wire), Call(SESSION, tuple(events))), 1)
    assert done.fatal is None and done.result is not None
    assert [m.event["eventId"] for m in done.result.accepted] == ["e0", "e1", "e2", "e3", "e5"]
    ((event, failure),) = done.result.rejected
    assert event.event["eventId"] == "e4" and failure.error_class == "JSONEncodeError"
    assert "surrogate" in failure.reason and "item-" not in failure.reason
    assert [i for ids in wire.sent for i in ids] == ["e0", "e1", "e2", "e3", "e5"]


def test_throttling_is_retried_on_a_timer_and_lowers_the_limit() -> None:
    metrics = Metrics()
    wire = Wire(script=["ThrottlingException", "InternalFailure", "200"])
    sender = delivery(wire, metrics=metrics)
    (done,) = collect(_submitted(sender, call(0, 3)), 1)
    assert done.result is not None and len(done.result.accepted) == 3
    assert len(wire.sent) == 3
    assert metrics.value("personalize_consumer_put_events_retries_total") == 2
    calls = "personalize_consumer_put_events_calls_total"
    assert metrics.value(calls, outcome="throttled") == 1
    assert metrics.value(calls, outcome="transient") == 1
    assert sender.limit < 8


def test_a_refusal_is_fatal_and_names_the_fix() -> None:
    wire = Wire(script=["AccessDeniedException"])
    (done,) = collect(_submitted(delivery(wire), call(0, 2)), 1)
    assert done.result is None and done.fatal is not None
    assert "grant personalize:PutEvents" in str(done.fatal)


def test_the_rate_cap_holds_attempts_back_on_a_timer_not_a_sleep() -> None:
    wire = Wire()
    # A burst of 5, then one token every 200 ms: far longer than submitting takes on any machine
    # (at 50/s, one token every 20 ms, a slow VM refilled one before the burst was out).
    sender = delivery(wire, rate=5.0)
    for n in range(7):
        sender.submit(call(n, 1))
    assert len(wire.sent) == 5  # the other two wait for tokens, and submit returned
    collect(sender, 7)
    assert len(wire.sent) == 7


def _submitted(sender: Delivery, each: Call) -> Delivery:
    sender.submit(each)
    return sender


ITEMS = SessionKey("arn:aws:personalize:us-east-1:1:dataset/g/ITEMS", None, "items/0", "PutItems")


def items_call(ids: list[str]) -> Call:
    entries = [
        MappedEvent(SourceRecord("items", 0, n, None, b"", [], None), ITEMS, {"itemId": i})
        for n, i in enumerate(ids)
    ]
    kept, superseded = latest_only("itemId", tuple(entries))
    return Call(ITEMS, kept, superseded)


def test_a_superseded_update_is_done_with_the_one_that_supersedes_it() -> None:
    wire = Wire()
    sender = delivery(wire, metrics=(metrics := Metrics()))
    sender.submit(items_call(["a", "b", "a"]))
    (done,) = collect(sender, 1)
    assert wire.operations == ["PutItems"] and wire.sent == [["b", "a"]]
    assert done.result is not None
    assert [m.record.offset for m in done.result.accepted] == [1, 2]
    assert [m.record.offset for m in done.result.superseded] == [0]
    calls = "personalize_consumer_put_events_calls_total"
    assert metrics.value(calls, outcome="accepted", operation="PutItems") == 1
    assert metrics.value(calls, outcome="accepted", operation="PutEvents") == 0


def test_a_superseded_update_stays_unsent_when_its_call_is_cancelled() -> None:
    wire = Wire()
    wire.hold = True
    sender = delivery(wire)
    sender.submit(items_call(["a", "a"]))
    sender.close()
    (done,) = collect(sender, 1)
    assert done.result is not None and done.result.superseded == []
    assert sorted(m.record.offset for m in done.result.unsent) == [0, 1]  # neither committed


def test_each_operation_has_its_own_rate() -> None:
    wire = Wire()
    limit = AdaptiveLimit(8, cooldown_s=0)
    rates = {"PutItems": RateLimiter(1.0)}  # one token: the second call waits a second
    sender = Delivery(wire, errors, limit, RateLimiter(None), Metrics(), 0.01, rates)
    sender.submit(items_call(["a"]))
    sender.submit(items_call(["b"]))
    sender.submit(call(0, 1))  # PutEvents has no cap here: it leaves at once
    assert wire.operations == ["PutItems", "PutEvents"]
    collect(sender, 3, within_s=5.0)
    assert wire.operations == ["PutItems", "PutEvents", "PutItems"]
