"""Avro bytes to Python values, with the writer schema from a file (schemaless framing).

Anything that doesn't parse cleanly is a `Failure`: the same bytes will never parse, so retrying is
pointless and the record belongs on the dead-letter topic.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import fastavro

from consumer.records import Failure, Stage


class SchemalessDecoder:
    """Decodes bare Avro binary records written with one known writer schema."""

    def __init__(self, writer_schema: dict[str, Any]) -> None:
        self._schema = fastavro.parse_schema(writer_schema)

    @classmethod
    def from_file(cls, path: Path) -> SchemalessDecoder:
        schema = fastavro.schema.load_schema(str(path))
        if not isinstance(schema, dict):
            raise ValueError(f"{path}: the writer schema must be an Avro record")
        return cls(schema)

    def decode(self, value: bytes | None) -> dict[str, Any] | Failure:
        if not value:
            return Failure(Stage.DECODE, "EmptyValue", "record value is empty (tombstone?)")
        buffer = io.BytesIO(value)
        try:
            decoded = fastavro.schemaless_reader(buffer, self._schema, None)
        except Exception as exc:  # fastavro signals bad bytes with many exception types
            return Failure(Stage.DECODE, type(exc).__name__, f"value is not valid Avro: {exc}")
        if buffer.tell() != len(value):
            return Failure(
                Stage.DECODE,
                "TrailingBytes",
                f"value has {len(value) - buffer.tell()} bytes after the Avro record",
            )
        if not isinstance(decoded, dict):
            return Failure(Stage.DECODE, "NotARecord", "writer schema is not an Avro record")
        return decoded
