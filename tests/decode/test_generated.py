"""The generated record reader reads exactly what fastavro reads, and leaves to fastavro what it
does not cover; bad bytes still get fastavro's words on the dead-letter record."""

from __future__ import annotations

import io
import itertools
from typing import Any

import fastavro
import pytest
from fastavro.utils import generate_many
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumer.decode.generated import compile_reader
from consumer.decode.schema import BodyReader
from consumer.records import Failure

_names = itertools.count()

_PRIMITIVE = st.sampled_from(
    ["null", "boolean", "int", "long", "float", "double", "bytes", "string"]
)
_LOGICAL = st.sampled_from(
    [
        {"type": "long", "logicalType": "timestamp-millis"},
        {"type": "long", "logicalType": "timestamp-micros"},
        {"type": "long", "logicalType": "local-timestamp-millis"},
        {"type": "long", "logicalType": "local-timestamp-micros"},
        {"type": "string", "logicalType": "uuid"},
        {"type": "string", "logicalType": "not-a-known-one"},
    ]
)


def _name(prefix: str) -> str:
    return f"{prefix}{next(_names)}"


@st.composite
def _named(draw: st.DrawFn) -> dict[str, Any]:
    if draw(st.booleans()):
        symbols = draw(
            st.lists(
                st.from_regex(r"[A-Z][A-Z0-9_]{0,5}", fullmatch=True),
                min_size=1,
                max_size=5,
                unique=True,
            )
        )
        return {"type": "enum", "name": _name("E"), "symbols": symbols}
    return {"type": "fixed", "name": _name("F"), "size": draw(st.integers(0, 12))}


def _types(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    non_union = st.one_of(
        st.builds(lambda items: {"type": "array", "items": items}, children),
        st.builds(lambda values: {"type": "map", "values": values}, children),
        st.lists(children, min_size=1, max_size=4).map(
            lambda types: {
                "type": "record",
                "name": _name("R"),
                "fields": [{"name": f"f{i}", "type": t} for i, t in enumerate(types)],
            }
        ),
    )
    # A union's branches must differ in type: null plus one other, as schemas mostly have it.
    union = children.filter(lambda t: not isinstance(t, list) and t != "null").map(
        lambda t: ["null", t]
    )
    return st.one_of(non_union, union)


_TYPE = st.recursive(st.one_of(_PRIMITIVE, _LOGICAL, _named()), _types, max_leaves=8)
_SCHEMA = st.lists(_TYPE, min_size=1, max_size=6).map(
    lambda types: {
        "type": "record",
        "name": _name("Top"),
        "fields": [{"name": f"field{i}", "type": t} for i, t in enumerate(types)],
    }
)


def _fastavro(parsed: dict[str, Any], body: bytes) -> Any:
    return fastavro.schemaless_reader(io.BytesIO(body), parsed, None)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schema=_SCHEMA, seed=st.integers(0, 2**16))
def test_it_reads_what_fastavro_reads(schema: dict[str, Any], seed: int) -> None:
    parsed = fastavro.parse_schema(schema)
    read = compile_reader(parsed)
    assert read is not None
    for record in generate_many(schema, 5):
        buffer = io.BytesIO()
        fastavro.schemaless_writer(buffer, parsed, record)
        body = b"\x00" * (seed % 3) + buffer.getvalue()
        value, end = read(body, seed % 3)
        assert end == len(body)
        assert value == _fastavro(parsed, body[seed % 3 :])


def test_named_types_are_read_where_they_are_referenced() -> None:
    schema = fastavro.parse_schema(
        {
            "type": "record",
            "name": "Outer",
            "namespace": "n",
            "fields": [
                {
                    "name": "a",
                    "type": {
                        "type": "record",
                        "name": "Inner",
                        "fields": [{"name": "x", "type": "int"}],
                    },
                },
                {"name": "b", "type": ["null", "Inner"]},
                {"name": "c", "type": {"type": "array", "items": "n.Inner"}},
            ],
        }
    )
    record = {"a": {"x": 1}, "b": {"x": -2}, "c": [{"x": 300}, {"x": 4}]}
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, schema, record)
    read = compile_reader(schema)
    assert read is not None
    assert read(buffer.getvalue(), 0) == (record, len(buffer.getvalue()))


@pytest.mark.parametrize(
    "field_type",
    [
        {"type": "int", "logicalType": "date"},
        {"type": "bytes", "logicalType": "decimal", "precision": 4, "scale": 2},
        {"type": "long", "logicalType": "time-micros"},
    ],
)
def test_what_it_does_not_cover_is_left_to_fastavro(field_type: dict[str, Any]) -> None:
    schema = fastavro.parse_schema(
        {"type": "record", "name": "T", "fields": [{"name": "v", "type": field_type}]}
    )
    assert compile_reader(schema) is None


def test_a_recursive_type_is_left_to_fastavro() -> None:
    schema = fastavro.parse_schema(
        {
            "type": "record",
            "name": "Node",
            "fields": [
                {"name": "value", "type": "long"},
                {"name": "next", "type": ["null", "Node"]},
            ],
        }
    )
    assert compile_reader(schema) is None
    reader = BodyReader(schema, None, "")
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, schema, {"value": 1, "next": {"value": 2, "next": None}})
    assert reader.read(buffer.getvalue(), 0) == {"value": 1, "next": {"value": 2, "next": None}}


_SAMPLE = fastavro.parse_schema(
    {
        "type": "record",
        "name": "S",
        "fields": [
            {"name": "id", "type": "string"},
            {"name": "kind", "type": {"type": "enum", "name": "K", "symbols": ["A", "B"]}},
            {"name": "tags", "type": {"type": "array", "items": "string"}},
        ],
    }
)


def _sample() -> bytes:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, _SAMPLE, {"id": "abc", "kind": "B", "tags": ["x", "y"]})
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("body", "error_class"),
    [
        (_sample()[:-2], "EOFError"),  # cut short inside the array
        (_sample() + b"\x00", "TrailingBytes"),
        (b"\x06ab", "EOFError"),  # a string longer than the bytes left
        (b"\x00\x04", "IndexError"),  # enum index 2 of 2 symbols
        (b"\x02\xff\x80", "UnicodeDecodeError"),
    ],
)
def test_bad_bytes_fail_with_fastavros_reason(body: bytes, error_class: str) -> None:
    failure = BodyReader(_SAMPLE, None, "").read(body, 0)
    assert isinstance(failure, Failure)
    assert failure.error_class == error_class
    assert failure == _with_fastavro_only(body)  # word for word what the dead-letter got before


def _with_fastavro_only(body: bytes) -> Failure | dict[str, Any]:
    reader = BodyReader(_SAMPLE, None, "")
    reader._fast = None  # the reader as it was before generated code
    return reader.read(body, 0)
