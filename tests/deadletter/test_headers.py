"""The dead-letter header contract (also documented in the README)."""

from __future__ import annotations

from datetime import UTC, datetime

from consumer.deadletter.headers import dead_letter_headers
from consumer.records import Failure, Rejected, SourceRecord, Stage


def test_original_headers_come_first_then_the_context() -> None:
    record = SourceRecord("clicks", 2, 41, b"key", b"\x00bad", [("trace", b"abc"), ("n", None)], 17)
    item = Rejected(record, Failure(Stage.DECODE, "EOFError", "value is not valid Avro"))
    headers = dead_letter_headers(item, "group-a", datetime(2026, 11, 27, tzinfo=UTC))
    assert headers[:2] == [("trace", b"abc"), ("n", None)]
    assert dict(headers[2:]) == {
        "__connect.errors.topic": b"clicks",
        "__connect.errors.partition": b"2",
        "__connect.errors.offset": b"41",
        "__connect.errors.timestamp": b"17",
        "__connect.errors.consumer.group": b"group-a",
        "__connect.errors.stage": b"decode",
        "__connect.errors.exception.class.name": b"EOFError",
        "__connect.errors.exception.message": b"value is not valid Avro",
        "__connect.errors.failed.at": b"2026-11-27T00:00:00.000+00:00",
    }


def test_reason_is_capped() -> None:
    record = SourceRecord("t", 0, 0, None, b"", [], None)
    item = Rejected(record, Failure(Stage.MAP, "X", "r" * 5000))
    headers = dict(dead_letter_headers(item, "g", datetime.now(UTC)))
    assert len(headers["__connect.errors.exception.message"] or b"") == 1000
    assert headers["__connect.errors.timestamp"] == b""
