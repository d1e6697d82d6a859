"""Avro bytes to Python values: schemaless records with a writer schema file, or Confluent wire
format with writer schemas from a Schema Registry; optionally resolved to a reader schema.

Outcomes, and why they differ:

- a `dict`, in the reader schema's shape when one is given (so records written with older or newer
  versions of a schema all look alike to the mapping), else in the writer's;
- a `Failure` when the bytes can never decode: empty, no magic byte, a short header, an id the
  registry does not have, bad Avro, trailing bytes. Retrying is pointless; the record belongs on
  the dead-letter topic;
- `RegistryUnavailable` raised when the registry can't tell us a writer schema right now. The
  record is fine, so the pipeline holds its partition back and retries; it is never dead-lettered.

`decode` runs once per record on the poll loop, so everything that can be worked out per schema is
worked out once: the writer schema is fetched and parsed once per id, and the plan for resolving
it to the reader schema is made once per id. Per record there is one dict lookup (keyed by the
5-byte header itself, so it checks the magic byte for free) and fastavro's read.
"""

from __future__ import annotations

import copy
import io
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import fastavro
from fastavro import schemaless_reader

from consumer.records import Failure, Stage
from consumer.registry import (
    RegistryAccessDenied,
    RegistryUnavailable,
    SchemaNotUsable,
    SchemaRegistry,
    SchemaSource,
)

__all__ = [
    "Decoder",
    "RegistryAccessDenied",
    "RegistryUnavailable",
    "SchemalessDecoder",
    "WireFormatDecoder",
    "load_schema_file",
    "make_decoder",
]

#: Confluent wire format: magic byte 0, then the writer schema id as a 4-byte big-endian int.
MAGIC_BYTE = 0
HEADER_SIZE = 5

_EMPTY = Failure(Stage.DECODE, "EmptyValue", "record value is empty (tombstone?)")

_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})


class Decoder(Protocol):
    """Record value bytes to a dict, or why they never will be (see the module docstring)."""

    def decode(self, value: bytes | None) -> dict[str, Any] | Failure:
        """A dict or a `Failure`; may raise `RegistryUnavailable` (retry the record later)."""
        ...

    def close(self) -> None:
        """Release connections (the registry client's); decoding after this is undefined."""
        ...


def load_schema_file(path: Path) -> dict[str, Any]:
    """A parsed Avro record schema from a file (named types in sibling `.avsc` files resolve).

    Raises ValueError naming the file when it isn't a valid Avro record schema.
    """
    try:
        schema = fastavro.schema.load_schema(str(path))
    except Exception as exc:  # fastavro raises several unrelated types for a bad schema
        raise ValueError(f"{path}: not a valid Avro schema: {exc}") from None
    if not isinstance(schema, dict) or schema.get("type") != "record":
        raise ValueError(f"{path}: the schema must be an Avro record")
    return schema


def make_decoder(
    schema_file: Path,
    registry_url: str | None,
    basic_auth: str | None,
    reader_schema_file: Path | None,
    *,
    registry_timeout_s: float = 5.0,
) -> Decoder:
    """The decoder the settings ask for.

    With `registry_url` (SCHEMA_REGISTRY_URL) records are Confluent wire format and `schema_file`
    is not used: each record names its writer schema. Without it records are schemaless Avro
    written with `schema_file` (AVRO_SCHEMA_FILE). Either way `reader_schema_file`
    (AVRO_READER_SCHEMA_FILE) gives the shape records decode to. Raises ValueError for a bad
    schema file or registry setting.
    """
    reader = load_schema_file(reader_schema_file) if reader_schema_file is not None else None
    if registry_url:
        registry = SchemaRegistry.connect(registry_url, basic_auth, timeout_s=registry_timeout_s)
        return WireFormatDecoder(registry, reader)
    if basic_auth is not None:
        raise ValueError("Schema Registry basic auth is set without a Schema Registry URL")
    return SchemalessDecoder(load_schema_file(schema_file), reader)


class SchemalessDecoder:
    """Decodes bare Avro binary records written with one known writer schema."""

    def __init__(
        self, writer_schema: dict[str, Any], reader_schema: dict[str, Any] | None = None
    ) -> None:
        writer = _parse_record(writer_schema, "the writer schema")
        reader = (
            None if reader_schema is None else _parse_record(reader_schema, "the reader schema")
        )
        self._body = _BodyReader(writer, reader, "")

    @classmethod
    def from_file(cls, path: Path, reader_path: Path | None = None) -> SchemalessDecoder:
        reader = load_schema_file(reader_path) if reader_path is not None else None
        return cls(load_schema_file(path), reader)

    def decode(self, value: bytes | None) -> dict[str, Any] | Failure:
        if not value:
            return _EMPTY
        return self._body.read(value, 0)

    def close(self) -> None:
        """Nothing to release; here for the `Decoder` protocol."""


class WireFormatDecoder:
    """Decodes Confluent wire format: magic byte 0, a 4-byte schema id, then the Avro body.

    Writer schemas come from `schemas` (a Schema Registry) the first time an id is seen and are
    kept for good: a registered schema never changes. An id the registry says it doesn't have is
    remembered for `unknown_id_ttl_s` only, so a burst of such records costs one lookup, yet a
    schema registered moments after its first record (a lagging registry replica) is found soon.

    A fetch is a blocking call on the poll loop, bounded by the client's timeout. So that a
    hanging registry costs one timeout rather than one per held-back partition, a failed fetch
    makes fetches of other ids fail at once for `retry_after_s` (schemas already known keep
    decoding).
    """

    def __init__(
        self,
        schemas: SchemaSource,
        reader_schema: dict[str, Any] | None = None,
        unknown_id_ttl_s: float = 30.0,
        retry_after_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._schemas = schemas
        self._clock = clock
        self._retry_after_s = retry_after_s
        #: Until when fetches fail at once, and the failure that started it.
        self._down_until = -math.inf
        self._down: RegistryUnavailable | None = None
        self._reader_schema = (
            None if reader_schema is None else _parse_record(reader_schema, "the reader schema")
        )
        #: By the 5-byte header: one lookup per record finds the plan and checks the magic byte.
        self._bodies: dict[bytes, _BodyReader | _AlwaysFails] = {}
        #: schema id -> (forget after, the failure), for ids the registry does not have.
        self._unknown: dict[int, tuple[float, Failure]] = {}
        self._unknown_ttl_s = unknown_id_ttl_s

    def decode(self, value: bytes | None) -> dict[str, Any] | Failure:
        try:
            body = self._bodies[value[:HEADER_SIZE]]  # type: ignore[index]
        except (KeyError, TypeError):  # not seen yet, None, or not bytes
            return self._first_sight(value)
        return body.read(value, HEADER_SIZE)  # type: ignore[arg-type]

    def close(self) -> None:
        self._schemas.close()

    def _first_sight(self, value: bytes | None) -> dict[str, Any] | Failure:
        """The slow path: check the header, fetch and plan the writer schema, then read."""
        if not value:
            return _EMPTY
        if value[0] != MAGIC_BYTE:
            return Failure(
                Stage.DECODE,
                "UnknownMagicByte",
                f"value starts with byte {value[0]}, not the Schema Registry magic byte 0: "
                "not Confluent wire format",
            )
        if len(value) < HEADER_SIZE:
            return Failure(
                Stage.DECODE,
                "ShortHeader",
                f"value is {len(value)} bytes, shorter than the {HEADER_SIZE}-byte "
                "wire-format header",
            )
        header = bytes(value[:HEADER_SIZE])
        body = self._bodies.get(header)
        if body is None:
            loaded = self._load(int.from_bytes(header[1:], "big"))
            if isinstance(loaded, Failure):
                return loaded
            body = self._bodies[header] = loaded
        return body.read(bytes(value), HEADER_SIZE)

    def _load(self, schema_id: int) -> _BodyReader | _AlwaysFails | Failure:
        """A plan for `schema_id`, or the (remembered) failure of an id the registry lacks.

        Raises `RegistryUnavailable`; nothing is remembered then, so the retry asks again.
        """
        now = self._clock()
        unknown = self._unknown.get(schema_id)
        if unknown is not None:
            if unknown[0] > now:
                return unknown[1]
            del self._unknown[schema_id]
        if now < self._down_until and self._down is not None:
            raise RegistryUnavailable(
                f"schema id {schema_id} not fetched: the last fetch failed moments ago "
                f"({self._down})",
                schema_id,
                self._down.status,
            )
        try:
            writer = self._schemas.writer_schema(schema_id)
        except RegistryUnavailable as exc:
            self._down_until, self._down = self._clock() + self._retry_after_s, exc
            raise
        except SchemaNotUsable as exc:
            failure = Failure(Stage.DECODE, exc.error_class, exc.reason)
            if exc.error_class != "UnknownSchemaId":
                return _AlwaysFails(failure)  # the schema behind an id never changes
            if len(self._unknown) >= 10_000:  # garbage headers must not grow this without bound
                self._unknown.clear()
            self._unknown[schema_id] = (now + self._unknown_ttl_s, failure)
            return failure
        return _BodyReader(writer, self._reader_schema, f" for schema id {schema_id}")


class _AlwaysFails:
    """Stands in for a plan when the schema behind an id can never decode anything."""

    __slots__ = ("_failure",)

    def __init__(self, failure: Failure) -> None:
        self._failure = failure

    def read(self, value: bytes, start: int) -> dict[str, Any] | Failure:
        return self._failure


class _BodyReader:
    """Reads Avro record bodies written with one writer schema, in the reader schema's shape.

    The plan is made once: no reader schema or an identical one reads with the writer schema
    alone; a reader that only adds fields with defaults or drops fields (the usual schema
    evolution) also reads with the writer schema alone, then drops and fills the top-level fields,
    because fastavro's general resolution is markedly slower per record; anything else (type
    promotions, aliases, changed nested types) goes through fastavro's resolution.
    """

    __slots__ = ("_drop", "_fill", "_fresh", "_label", "_project", "_reader", "_writer")

    def __init__(self, writer: dict[str, Any], reader: dict[str, Any] | None, label: str) -> None:
        self._writer = writer
        self._reader: dict[str, Any] | None = None
        self._label = label
        self._project = False
        self._drop: tuple[str, ...] = ()
        self._fill: dict[str, Any] = {}
        self._fresh: tuple[tuple[str, Callable[[], Any]], ...] = ()
        if reader is None or reader == writer:
            return
        projection = _projection(writer, reader)
        if projection is None:
            self._reader = reader
            return
        self._project = True
        self._drop, defaults = projection
        mutable = {k: v for k, v in defaults.items() if isinstance(v, list | dict)}
        self._fill = {k: v for k, v in defaults.items() if k not in mutable}
        # Each record gets its own copy of a list or map default: the mapping may keep or change it.
        self._fresh = tuple((k, _copier(v)) for k, v in mutable.items())

    def read(self, value: bytes, start: int) -> dict[str, Any] | Failure:
        buffer = io.BytesIO(value)
        if start:
            buffer.seek(start)
        try:
            record: dict[str, Any] = schemaless_reader(buffer, self._writer, self._reader)  # type: ignore[assignment]
        except Exception as exc:  # fastavro signals bad bytes with many exception types
            return Failure(
                Stage.DECODE,
                type(exc).__name__,
                f"value is not valid Avro{self._label}: {_short(exc)}",
            )
        if buffer.tell() != len(value):
            return Failure(
                Stage.DECODE,
                "TrailingBytes",
                f"value has {len(value) - buffer.tell()} bytes after the Avro record{self._label}",
            )
        if self._project:
            for name in self._drop:
                del record[name]
            record.update(self._fill)
            for name, make in self._fresh:
                record[name] = make()
        return record


def _parse_record(schema: dict[str, Any], what: str) -> dict[str, Any]:
    """`schema` parsed for fastavro (a no-op when it already is); ValueError unless a record."""
    parsed = fastavro.parse_schema(schema)
    if not isinstance(parsed, dict) or parsed.get("type") != "record":
        raise ValueError(f"{what} must be an Avro record")
    return parsed


def _projection(
    writer: dict[str, Any], reader: dict[str, Any]
) -> tuple[tuple[str, ...], dict[str, Any]] | None:
    """(writer fields to drop, reader fields to fill with their defaults), or None.

    None means "use fastavro's resolution": whenever dropping and filling top-level fields might
    not give exactly what resolution gives. Every field both schemas have must have the very same
    type, with no reference to a named type by name (its definition could differ between them);
    no reader field may have aliases (resolution would match it to a differently named writer
    field); a reader field the writer lacks must have a default (else resolution reports it).
    """
    if writer.get("type") != "record" or reader.get("type") != "record":
        return None
    if writer.get("name") != reader.get("name"):
        return None
    writer_fields = {f["name"]: f for f in writer["fields"]}
    missing = []
    for field in reader["fields"]:
        if field.get("aliases"):
            return None
        written = writer_fields.get(field["name"])
        if written is None:
            if "default" not in field:
                return None
            missing.append(field)
        elif written["type"] != field["type"] or _names_a_type(field["type"]):
            return None
    kept = {f["name"] for f in reader["fields"]}
    drop = tuple(name for name in writer_fields if name not in kept)
    if not missing:
        return drop, {}
    # The defaults exactly as fastavro's resolution produces them (its JSON-to-value rules for
    # bytes, unions, logical types): resolve an empty record to one with just those fields.
    try:
        empty = fastavro.parse_schema({"type": "record", "name": reader["name"], "fields": []})
        wanted = fastavro.parse_schema(
            {"type": "record", "name": reader["name"], "fields": missing}
        )
        defaults = schemaless_reader(io.BytesIO(b""), empty, wanted)
    except Exception:  # a default fastavro can't produce on its own: let resolution handle it
        return None
    if not isinstance(defaults, dict):
        return None
    return drop, defaults


def _names_a_type(schema: Any) -> bool:
    """Whether `schema` refers to a named type by its name (rather than defining it inline)."""
    if isinstance(schema, str):
        return schema not in _PRIMITIVES
    if isinstance(schema, list):
        return any(_names_a_type(branch) for branch in schema)
    if isinstance(schema, dict):
        kind = schema.get("type")
        if kind in ("record", "error"):
            return any(_names_a_type(f["type"]) for f in schema.get("fields", ()))
        if kind == "array":
            return _names_a_type(schema.get("items"))
        if kind == "map":
            return _names_a_type(schema.get("values"))
        if kind in ("enum", "fixed"):
            return False
        return _names_a_type(kind)
    return True  # not a schema we recognise: be conservative


def _copier(value: Any) -> Callable[[], Any]:
    if not value:
        return type(value)  # [] or {}: the cheap, common case
    return lambda: copy.deepcopy(value)


def _short(exc: Exception, limit: int = 200) -> str:
    """fastavro's message, bounded: it names positions and schema parts, not record data."""
    text = str(exc) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
