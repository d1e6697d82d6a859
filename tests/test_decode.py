"""Schemaless Avro decoding with the writer schema from a file."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from consumer import DEFAULT_SCHEMA_FILE
from consumer.decode import SchemalessDecoder
from consumer.records import Failure, Stage
from consumer.samples import InteractionEncoder, interactions

DECODER = SchemalessDecoder.from_file(DEFAULT_SCHEMA_FILE)
ENCODER = InteractionEncoder()


def test_round_trip_keeps_every_field() -> None:
    original = next(interactions(1)) | {
        "eventId": "e1",
        "eventValue": 1.5,
        "properties": {"a": "b"},
        "impression": ["x", "y"],
        "sentAt": datetime(2026, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC),
    }
    decoded = DECODER.decode(ENCODER.encode(original))
    assert decoded == original


def test_empty_value_is_a_decode_failure() -> None:
    failure = DECODER.decode(b"")
    assert isinstance(failure, Failure)
    assert failure.stage is Stage.DECODE
    assert DECODER.decode(None) == failure


def test_truncated_record_is_a_decode_failure() -> None:
    data = ENCODER.encode(next(interactions(1)))
    failure = DECODER.decode(data[: len(data) // 2])
    assert isinstance(failure, Failure)
    assert failure.stage is Stage.DECODE


def test_trailing_bytes_are_a_decode_failure() -> None:
    failure = DECODER.decode(ENCODER.encode(next(interactions(1))) + b"\x00junk")
    assert isinstance(failure, Failure)
    assert failure.error_class == "TrailingBytes"


@given(st.binary(max_size=200))
def test_arbitrary_bytes_decode_or_fail_cleanly(data: bytes) -> None:
    outcome = DECODER.decode(data)
    assert isinstance(outcome, dict | Failure)
    if isinstance(outcome, Failure):
        assert outcome.stage is Stage.DECODE and outcome.reason
