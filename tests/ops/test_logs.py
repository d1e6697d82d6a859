"""JSON log lines, and librdkafka's repeated lines held back to one a minute with a count."""

from __future__ import annotations

import json
import logging

from consumer.ops.logs import JsonFormatter, RepeatFilter, RetryingIsInfo


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def record(message: str, *args: object, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord("librdkafka", level, __file__, 1, message, args, None)


def test_lines_that_differ_only_in_numbers_pass_once_a_minute_with_the_count_held_back() -> None:
    clock = Clock()
    repeats = RepeatFilter(every_s=60, clock=clock)
    line = "%s [%s] %s"
    fail = ("FAIL", "rdkafka#consumer-1", "127.0.0.1:9092: Connect failed (after %dms)")
    passed = []
    for n in range(200):
        clock.now = n * 0.5  # a reconnect every half second, for 100 s
        r = record(line, fail[0], fail[1], fail[2] % n)
        if repeats.filter(r):
            passed.append(r)
    assert len(passed) == 2  # at 0 s, and at 60 s
    assert not hasattr(passed[0], "repeated")
    assert passed[1].repeated == 119  # type: ignore[attr-defined]
    other = record(line, "GETPID", "rdkafka#consumer-1", "Coordinator load in progress")
    assert repeats.filter(other)  # another kind of line is not held back


def test_a_held_back_count_appears_as_a_field_of_the_json_line() -> None:
    r = record("FAIL %s", "x")
    r.repeated = 7
    line = json.loads(JsonFormatter().format(r))
    assert (line["msg"], line["repeated"], line["level"]) == ("FAIL x", 7, "error")


def test_a_fresh_broker_loading_its_coordinators_is_not_a_warning() -> None:
    logging.getLogger("librdkafka").setLevel(logging.WARNING)  # as the demo runs
    try:
        getpid = record(
            "GETPID [%s] [thrd:main]: Failed to acquire idempotence PID from broker %s: "
            "Broker: Coordinator load in progress: retrying",
            "personalize-consumer#producer-5",
            "127.0.0.1:38507/1",
            level=logging.WARNING,
        )
        assert not RetryingIsInfo().filter(getpid)
        assert getpid.levelname == "INFO"
        refused = record("FAIL %s", "Connection refused", level=logging.WARNING)
        assert RetryingIsInfo().filter(refused) and refused.levelname == "WARNING"
        logging.getLogger("librdkafka").setLevel(logging.INFO)
        assert RetryingIsInfo().filter(getpid)  # shown where INFO is
    finally:
        logging.getLogger("librdkafka").setLevel(logging.NOTSET)
