"""The sender threads: calls run concurrently, results come back, close cancels and joins."""

from __future__ import annotations

import threading
from typing import Any

from consumer.records import MappedEvent, SessionKey, SourceRecord
from consumer.send.batching import Call
from consumer.send.delivery import Delivery
from consumer.send.flow import AdaptiveLimit
from consumer.send.sink import SendResult


class _UntilCancelled:
    """A sink whose calls hang (an endpoint that never answers) until they are cancelled."""

    def __init__(self) -> None:
        self.started = threading.Semaphore(0)
        self.threads: set[int] = set()

    def send(self, call: Call, cancel: threading.Event) -> SendResult:
        self.threads.add(threading.get_ident())
        self.started.release()
        cancel.wait()
        return SendResult(unsent=list(call.events))


def _call(n: int) -> Call:
    session = SessionKey("tracker", None, f"s{n}")
    record = SourceRecord("t", n % 2, n, None, b"", [], None)
    return Call(session, (MappedEvent(record, session, {"eventType": "View", "sentAt": 0}),))


def test_calls_run_at_once_and_close_cancels_them_leaving_their_events_unsent() -> None:
    sink = _UntilCancelled()
    delivery = Delivery(sink, AdaptiveLimit(8))
    calls = [_call(n) for n in range(5)]
    for call in calls:
        delivery.submit(call)
    for _ in calls:  # all five are in flight together, each on a thread of its own
        assert sink.started.acquire(timeout=10)
    assert delivery.in_flight == 5 and len(sink.threads) == 5

    delivery.close()  # returns once every sender has finished its call

    done: list[Any] = delivery.completions()
    assert sorted(id(c.call) for c in done) == sorted(id(c) for c in calls)
    assert all(c.result is not None and c.result.unsent == list(c.call.events) for c in done)
    assert delivery.in_flight == 0


def test_cancel_by_partition_stops_only_the_calls_that_touch_it() -> None:
    sink = _UntilCancelled()
    delivery = Delivery(sink, AdaptiveLimit(8))
    delivery.submit(_call(0))  # partition 0
    delivery.submit(_call(1))  # partition 1
    for _ in range(2):
        assert sink.started.acquire(timeout=10)

    delivery.cancel([("t", 1)])
    (finished,) = delivery.completions(timeout_s=10)
    assert finished.call.events[0].record.partition == 1
    assert delivery.in_flight_for([("t", 0)]) == 1
    delivery.close()
