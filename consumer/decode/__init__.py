"""Avro bytes to Python values: schemaless records with a writer schema file, or Confluent wire
format with writer schemas from a Schema Registry; optionally resolved to a reader schema.

Outcomes, and why they differ:

- a `dict`, in the reader schema's shape when one is given (so records written with older or newer
  versions of a schema all look alike to the mapping), else in the writer's;
- a `Failure` when the bytes can never decode: empty, no magic byte, a short header, an id the
  registry does not have, bad Avro, trailing bytes. Retrying is pointless; the record belongs on
  the dead-letter topic;
- `RegistryUnavailable` (a `TransientError`) raised when the registry can't tell us a writer
  schema right now. The record is fine, so its partition is held back and retried; it is never
  dead-lettered. `RegistryAccessDenied` (a `FatalError`) when the registry refuses our
  credentials: that won't fix itself.

`decode` runs once per record on the poll loop, so everything that can be worked out per schema is
worked out once: the writer schema is fetched and parsed once per id, and the plan for resolving
it to the reader schema is made once per id. Per record there is one dict lookup (keyed by the
5-byte header itself, so it checks the magic byte for free) and fastavro's read.
"""

from __future__ import annotations

from typing import Any, Protocol

from consumer.decode.registry import RegistryUnavailable, SchemaRegistry
from consumer.decode.schema import load_schema_file
from consumer.decode.schemaless import SchemalessDecoder
from consumer.decode.wireformat import WireFormatDecoder
from consumer.records import Failure

__all__ = [
    "Decoder",
    "RegistryUnavailable",
    "SchemalessDecoder",
    "WireFormatDecoder",
    "load_schema_file",
    "make_decoder",
]


class Decoder(Protocol):
    """Record value bytes to a dict, or why they never will be (see the module docstring)."""

    def decode(self, value: bytes | None) -> dict[str, Any] | Failure:
        """A dict or a `Failure`; may raise `RegistryUnavailable` (retry the record later)."""
        ...

    def close(self) -> None:
        """Release connections (the registry client's); decoding after this is undefined."""
        ...


def make_decoder(
    writer_schema: dict[str, Any],
    registry_url: str | None,
    basic_auth: str | None,
    reader_schema: dict[str, Any] | None,
    *,
    registry_timeout_s: float = 5.0,
) -> Decoder:
    """The decoder the settings ask for.

    With `registry_url` (SCHEMA_REGISTRY_URL) records are Confluent wire format and
    `writer_schema` is not used: each record names its own. Without it records are schemaless
    Avro written with `writer_schema` (AVRO_SCHEMA_FILE). Either way `reader_schema`
    (AVRO_READER_SCHEMA_FILE) gives the shape records decode to. Raises ValueError for a bad
    registry setting.
    """
    if registry_url:
        registry = SchemaRegistry.connect(registry_url, basic_auth, timeout_s=registry_timeout_s)
        return WireFormatDecoder(registry, reader_schema)
    if basic_auth is not None:
        raise ValueError("Schema Registry basic auth is set without a Schema Registry URL")
    return SchemalessDecoder(writer_schema, reader_schema)
