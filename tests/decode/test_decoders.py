"""Schemaless Avro decoding with the writer schema from a file, optionally to a reader schema."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consumer import DEFAULT_SCHEMA_FILE
from consumer.decode import SchemalessDecoder, load_schema_file, make_decoder
from consumer.records import Failure, Stage
from consumer.testing.samples import InteractionEncoder, interactions

DECODER = SchemalessDecoder(load_schema_file(DEFAULT_SCHEMA_FILE))
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


def test_truncated_record_is_a_decode_failure_whose_reason_reads_as_a_sentence() -> None:
    data = ENCODER.encode(next(interactions(1)))
    half = len(data) // 2
    failure = DECODER.decode(data[:half])
    assert isinstance(failure, Failure)
    assert failure.stage is Stage.DECODE
    assert failure.reason == (
        f"value is not valid Avro: the {half}-byte value ends before the record does: it is cut "
        "short, or was not written with this schema"
    )


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


# -- reader schemas: schema evolution ----------------------------------------------------------

#: A writer schema with most kinds of Avro type, and readers of it: one that only drops and adds
#: fields (decoded with the writer schema, then projected) and ones that need fastavro's full
#: resolution (renames, promotions, a field naming a type). All must give what resolution gives.
RICH: dict[str, Any] = {
    "type": "record",
    "name": "Rich",
    "namespace": "t",
    "fields": [
        {"name": "id", "type": "string"},
        {"name": "n", "type": "int"},
        {"name": "amount", "type": ["null", "double"], "default": None},
        {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["A", "B", "C"]}},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
        {"name": "attrs", "type": {"type": "map", "values": "long"}},
        {
            "name": "inner",
            "type": {
                "type": "record",
                "name": "Inner",
                "fields": [
                    {"name": "x", "type": "long"},
                    {"name": "y", "type": ["null", "string"]},
                ],
            },
        },
        {"name": "raw", "type": "bytes"},
        {"name": "when", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "dropme", "type": "string"},
    ],
}
ADDED_FIELDS: list[dict[str, Any]] = [
    {"name": "xBytes", "type": "bytes", "default": "\u00ff\u0001"},
    {
        "name": "xEnum",
        "type": {"type": "enum", "name": "Color", "symbols": ["R", "G"]},
        "default": "G",
    },
    {
        "name": "xRecord",
        "type": {"type": "record", "name": "Extra", "fields": [{"name": "a", "type": "int"}]},
        "default": {"a": 1},
    },
    {"name": "xArray", "type": {"type": "array", "items": "int"}, "default": [1, 2]},
    {"name": "xMap", "type": {"type": "map", "values": "string"}, "default": {}},
    {"name": "xUnion", "type": ["null", "string"], "default": None},
    {"name": "xDate", "type": {"type": "int", "logicalType": "date"}, "default": 0},
]


def _reader(fields: list[dict[str, Any]]) -> dict[str, Any]:
    return RICH | {"fields": fields}


_KEPT = [f for f in RICH["fields"] if f["name"] != "dropme"]
READERS = {
    "drop and add (projection)": _reader(_KEPT + ADDED_FIELDS),
    "add only (projection)": _reader(RICH["fields"] + ADDED_FIELDS[:2]),
    "drop only (projection)": _reader(_KEPT),
    "rename by alias": _reader(
        [{"name": "ident", "aliases": ["id"], "type": "string"}, *_KEPT[1:]]
    ),
    "int promoted to long": _reader([_KEPT[0], {"name": "n", "type": "long"}, *_KEPT[2:]]),
    "a field naming a type": _reader(
        [*_KEPT, {"name": "inner2", "type": "t.Inner", "default": {"x": 1, "y": None}}]
    ),
}

rich_records = st.fixed_dictionaries(
    {
        "id": st.text(max_size=10),
        "n": st.integers(-(2**31), 2**31 - 1),
        "amount": st.none() | st.floats(allow_nan=False),
        "kind": st.sampled_from(["A", "B", "C"]),
        "tags": st.lists(st.text(max_size=5), max_size=3),
        "attrs": st.dictionaries(st.text(max_size=5), st.integers(-(2**63), 2**63 - 1), max_size=3),
        "inner": st.fixed_dictionaries(
            {"x": st.integers(-(2**63), 2**63 - 1), "y": st.none() | st.text(max_size=5)}
        ),
        "raw": st.binary(max_size=10),
        "when": st.integers(0, 4_102_444_800_000).map(
            lambda ms: datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
        ),
        "dropme": st.text(max_size=5),
    }
)
RICH_ENCODER = fastavro.parse_schema(RICH)


RICH_EXAMPLE: dict[str, Any] = {
    "id": "r1",
    "n": 1,
    "amount": None,
    "kind": "B",
    "tags": ["t"],
    "attrs": {"k": 1},
    "inner": {"x": 1, "y": None},
    "raw": b"\x00",
    "when": datetime(2026, 1, 1, tzinfo=UTC),
    "dropme": "gone",
}


def _encode(schema: Any, record: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, schema, record)
    return buffer.getvalue()


@pytest.mark.parametrize("name", list(READERS))
@settings(max_examples=50, deadline=None)
@given(record=rich_records)
def test_a_reader_schema_gives_exactly_what_avro_resolution_gives(
    name: str, record: dict[str, Any]
) -> None:
    reader = READERS[name]
    decoder = SchemalessDecoder(RICH, reader)
    data = _encode(RICH_ENCODER, record)
    expected = fastavro.schemaless_reader(
        io.BytesIO(data), fastavro.parse_schema(RICH), fastavro.parse_schema(reader)
    )
    assert decoder.decode(data) == expected


def test_adding_and_dropping_fields_is_decoded_without_full_resolution() -> None:
    """The common evolution takes the fast path (one read with the writer schema, then a
    projection); the rest must not, or it would be wrong."""
    plan = {name: SchemalessDecoder(RICH, reader)._body for name, reader in READERS.items()}
    projected = {name for name, body in plan.items() if body._project}
    assert projected == {name for name in READERS if "(projection)" in name}


def test_list_and_map_defaults_are_fresh_for_every_record() -> None:
    decoder = SchemalessDecoder(RICH, READERS["drop and add (projection)"])
    data = _encode(RICH_ENCODER, RICH_EXAMPLE)
    first, second = decoder.decode(data), decoder.decode(data)
    assert isinstance(first, dict) and isinstance(second, dict)
    assert first["xArray"] == [1, 2] and first["xMap"] == {}
    assert first["xArray"] is not second["xArray"] and first["xMap"] is not second["xMap"]
    first["xRecord"]["a"] = 99
    assert second["xRecord"] == {"a": 1}


def test_schemaless_records_of_an_older_writer_decode_to_the_reader_shape(tmp_path: Path) -> None:
    """AVRO_SCHEMA_FILE is what producers still write; AVRO_READER_SCHEMA_FILE what we map."""
    reader = json.loads(DEFAULT_SCHEMA_FILE.read_text())
    writer = reader | {"fields": [f for f in reader["fields"] if f["name"] != "impression"]}
    writer_file = tmp_path / "v1.avsc"
    writer_file.write_text(json.dumps(writer))
    decoder = make_decoder(
        load_schema_file(writer_file), None, None, load_schema_file(DEFAULT_SCHEMA_FILE)
    )
    original = next(interactions(1))
    old = {k: v for k, v in original.items() if k != "impression"}
    assert decoder.decode(InteractionEncoder(writer_file).encode(old)) == old | {"impression": []}


@pytest.mark.parametrize(
    "text",
    ['"string"', '{"type": "array", "items": "int"}', "{not json", '{"type": "nope"}'],
)
def test_a_schema_file_that_is_not_an_avro_record_is_rejected(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.avsc"
    path.write_text(text)
    with pytest.raises(ValueError, match=r"bad\.avsc"):
        load_schema_file(path)


def test_a_schema_file_that_is_not_json_says_where_it_stops_being_json(tmp_path: Path) -> None:
    path = tmp_path / "trunc.avsc"
    path.write_text('{"type": "record",\n "name": "trunc", "fields": [')
    with pytest.raises(ValueError) as raised:
        load_schema_file(path)
    assert str(raised.value).startswith(f"{path}: not valid JSON: ")
    assert "line 2, column" in str(raised.value)
