"""Delivery on the CRT client against the local endpoint over real HTTP: what each PutEvents
error class does to a call."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from consumer.errors import AwsRefused
from consumer.ops.metrics import Metrics
from consumer.records import MappedEvent, SessionKey, SourceRecord, Stage
from consumer.send.batching import Call
from consumer.send.crt import CrtClient
from consumer.send.delivery import Delivery
from consumer.send.flow import AdaptiveLimit, RateLimiter
from consumer.send.wire import Boto3Config
from consumer.testing.emulator import EmulatorConfig, EmulatorServer

SESSION = SessionKey("tracker", "user", "session")


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatorServer]:
    server = EmulatorServer(EmulatorConfig(seed=3))
    server.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_PERSONALIZE_EVENTS", server.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    yield server
    server.stop()


def delivery(limit: AdaptiveLimit | None = None, metrics: Metrics | None = None) -> Delivery:
    """PutEvents calls as `run` makes them: the CRT client, configured as boto3 is."""
    config = Boto3Config("us-east-1")
    return Delivery(
        CrtClient(config, max_connections=8),
        config.error,
        limit or AdaptiveLimit(16),
        RateLimiter(None),
        metrics or Metrics(),
        max_backoff_s=0.2,
    )


def finish(sender: Delivery, calls: list[Call], cancel_after_s: float | None = None) -> list[Any]:
    """Submit `calls` and collect their completions (cancelling all after `cancel_after_s`)."""
    for each in calls:
        sender.submit(each)
    done: list[Any] = []
    started = time.monotonic()
    while len(done) < len(calls):
        waited = time.monotonic() - started
        assert waited < 60, "calls did not finish within 60 s"
        if cancel_after_s is not None and waited >= cancel_after_s:
            sender.cancel()
        done += sender.completions(0.05)
    sender.close()
    return done


def call(count: int, bad: set[int] | None = None) -> Call:
    events = []
    for n in range(count):
        event: dict[str, Any] = {
            "eventId": f"e{n}",
            "eventType": "View",
            "sentAt": datetime(2026, 11, 1, tzinfo=UTC),
        }
        if n in (bad or set()):
            event["properties"] = '{"impression": "reserved key"}'
        record = SourceRecord("t", 0, n, None, b"", [], None)
        events.append(MappedEvent(record, SESSION, event))
    return Call(SESSION, tuple(events))


def test_one_invalid_event_among_ten_is_isolated_and_the_rest_sent(
    emulator: EmulatorServer,
) -> None:
    (completion,) = finish(delivery(), [call(10, bad={6})])
    result = completion.result
    assert [m.record.offset for m in result.accepted] == [0, 1, 2, 3, 4, 5, 7, 8, 9]
    ((rejected, failure),) = result.rejected
    assert rejected.record.offset == 6
    assert failure.stage is Stage.PUT_EVENTS
    assert failure.error_class == "InvalidInputException"
    assert "properties" in failure.reason
    assert emulator.stats()["accepted_events"] == 9


def test_throttling_is_retried_until_accepted_and_lowers_the_limit(
    emulator: EmulatorServer,
) -> None:
    emulator.set_faults(throttle_ratio=0.6, error_5xx_ratio=0.2)
    limit, metrics = AdaptiveLimit(16), Metrics()
    results = [c.result for c in finish(delivery(limit, metrics), [call(10) for _ in range(10)])]
    assert all(len(r.accepted) == 10 and not r.rejected and not r.unsent for r in results)
    stats = emulator.stats()
    assert stats["accepted_events"] == 100
    assert stats["throttled"] > 0 and stats["errors_5xx"] > 0
    calls = "personalize_consumer_put_events_calls_total"
    assert metrics.value(calls, outcome="throttled") == stats["throttled"]
    assert metrics.value(calls, outcome="accepted") == 10
    assert limit.limit < 16


def test_access_denied_is_fatal_and_names_the_fix(emulator: EmulatorServer) -> None:
    emulator.set_faults(access_denied=True)
    (completion,) = finish(delivery(), [call(3)])
    assert isinstance(completion.fatal, AwsRefused) and completion.result is None
    assert "AccessDeniedException" in str(completion.fatal)
    assert "personalize:PutEvents" in str(completion.fatal)


def test_a_call_cancelled_during_an_outage_leaves_its_events_unsent(
    emulator: EmulatorServer,
) -> None:
    emulator.set_faults(outage=True)
    (completion,) = finish(delivery(), [call(4)], cancel_after_s=0.5)
    result = completion.result
    assert not result.accepted and not result.rejected
    assert [m.record.offset for m in result.unsent] == [0, 1, 2, 3]
    assert emulator.stats()["outage_refusals"] >= 2
