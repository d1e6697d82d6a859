"""Schemaless Avro: bare record bodies, all written with one known writer schema."""

from __future__ import annotations

from typing import Any

from consumer.decode.schema import BodyReader, parse_record
from consumer.records import Failure, Stage

EMPTY = Failure(Stage.DECODE, "EmptyValue", "record value is empty (tombstone?)")


class SchemalessDecoder:
    """Decodes bare Avro binary records written with one known writer schema."""

    def __init__(
        self, writer_schema: dict[str, Any], reader_schema: dict[str, Any] | None = None
    ) -> None:
        writer = parse_record(writer_schema, "the writer schema")
        reader = None if reader_schema is None else parse_record(reader_schema, "the reader schema")
        self._body = BodyReader(writer, reader, "")

    def decode(self, value: bytes | None) -> dict[str, Any] | Failure:
        if not value:
            return EMPTY
        return self._body.read(value, 0)

    def close(self) -> None:
        """Nothing to release; here for the `Decoder` protocol."""
