"""Avro schema files and the per-schema plan that reads record bodies fast.

Everything that can be worked out per schema is worked out here, once: a schema file is parsed
once, and the plan for resolving a writer schema to the reader schema is made once per writer.
"""

from __future__ import annotations

import copy
import functools
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastavro
from fastavro import schemaless_reader

from consumer.decode.generated import compile_reader
from consumer.records import Failure, Stage

_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})


def load_schema_file(path: Path) -> dict[str, Any]:
    """The Avro record schema in `path` (named types in sibling `.avsc` files resolve).

    Read once per process however many settings name the file. Raises ValueError naming the file
    and, for a file that is not JSON, the line and column where it stops being JSON.
    """
    try:
        stat = path.stat()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read: {exc.strerror}") from None
    return copy.deepcopy(_load_schema_file(str(path), stat.st_mtime_ns))


@functools.lru_cache(maxsize=16)
def _load_schema_file(path: str, _mtime_ns: int) -> dict[str, Any]:
    try:
        json.loads(Path(path).read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text file (UTF-8 JSON expected)") from None
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{path}: not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from None
    try:
        schema = fastavro.schema.load_schema(path)
    except Exception as exc:  # fastavro raises several unrelated types for a bad schema
        raise ValueError(f"{path}: not a valid Avro schema: {_short(exc)}") from None
    if not isinstance(schema, dict) or schema.get("type") != "record":
        raise ValueError(f"{path}: the schema must be an Avro record")
    return schema


def parse_record(schema: dict[str, Any], what: str) -> dict[str, Any]:
    """`schema` parsed for fastavro (a no-op when it already is); ValueError unless a record."""
    parsed = fastavro.parse_schema(schema)
    if not isinstance(parsed, dict) or parsed.get("type") != "record":
        raise ValueError(f"{what} must be an Avro record")
    return parsed


class AlwaysFails:
    """Stands in for a plan when the schema behind an id can never decode anything."""

    __slots__ = ("_failure",)

    def __init__(self, failure: Failure) -> None:
        self._failure = failure

    def read(self, value: bytes, start: int) -> dict[str, Any] | Failure:
        return self._failure


class BodyReader:
    """Reads Avro record bodies written with one writer schema, in the reader schema's shape.

    The plan is made once: no reader schema or an identical one reads with the writer schema
    alone; a reader that only adds fields with defaults or drops fields (the usual schema
    evolution) also reads with the writer schema alone, then drops and fills the top-level fields,
    because fastavro's general resolution is markedly slower per record; anything else (type
    promotions, aliases, changed nested types) goes through fastavro's resolution.
    """

    __slots__ = ("_drop", "_fast", "_fill", "_fresh", "_label", "_project", "_reader", "_writer")

    def __init__(self, writer: dict[str, Any], reader: dict[str, Any] | None, label: str) -> None:
        self._writer = writer
        self._reader: dict[str, Any] | None = None
        self._label = label
        self._project = False
        self._drop: tuple[str, ...] = ()
        self._fill: dict[str, Any] = {}
        self._fresh: tuple[tuple[str, Callable[[], Any]], ...] = ()
        #: Reads with the writer schema alone, in code generated for it (`generated.py`).
        self._fast = compile_reader(writer)
        if reader is None or reader == writer:
            return
        projection = _projection(writer, reader)
        if projection is None:
            self._reader = reader
            self._fast = None
            return
        self._project = True
        self._drop, defaults = projection
        mutable = {k: v for k, v in defaults.items() if isinstance(v, list | dict)}
        self._fill = {k: v for k, v in defaults.items() if k not in mutable}
        # Each record gets its own copy of a list or map default: the mapping may keep or change it.
        self._fresh = tuple((k, _copier(v)) for k, v in mutable.items())

    def read(self, value: bytes, start: int) -> dict[str, Any] | Failure:
        if self._fast is not None:
            try:
                record, end = self._fast(value, start)
            except Exception:  # not a record of the schema: fastavro says why
                pass
            else:
                if end == len(value):
                    return self._projected(record) if self._project else record
        return self._read_with_fastavro(value, start)

    def _read_with_fastavro(self, value: bytes, start: int) -> dict[str, Any] | Failure:
        buffer = io.BytesIO(value)
        if start:
            buffer.seek(start)
        try:
            record: dict[str, Any] = schemaless_reader(buffer, self._writer, self._reader)  # type: ignore[assignment]
        except Exception as exc:  # fastavro signals bad bytes with many exception types
            return Failure(Stage.DECODE, type(exc).__name__, self._unreadable(value, start, exc))
        if buffer.tell() != len(value):
            return Failure(
                Stage.DECODE,
                "TrailingBytes",
                f"value has {len(value) - buffer.tell()} bytes after the Avro record{self._label}",
            )
        return self._projected(record) if self._project else record

    def _projected(self, record: dict[str, Any]) -> dict[str, Any]:
        for name in self._drop:
            del record[name]
        record.update(self._fill)
        for name, make in self._fresh:
            record[name] = make()
        return record

    def _unreadable(self, value: bytes, start: int, exc: Exception) -> str:
        """A sentence an operator can act on. fastavro's own words follow when they add something
        (positions and schema parts, never record data); at an early end they only say which
        length it misread ("Expected -270272 bytes, read 15"), so they are left out."""
        size = len(value) - start
        if isinstance(exc, EOFError):
            return (
                f"value is not valid Avro{self._label}: the {size}-byte value ends before the "
                "record does: it is cut short, or was not written with this schema"
            )
        what = f"the {size}-byte value does not read as a record of this schema"
        return f"value is not valid Avro{self._label}: {what} (fastavro: {_short(exc)})"


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
