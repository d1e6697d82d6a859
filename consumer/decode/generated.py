"""Record bodies read by Python code generated once per writer schema, instead of by fastavro's
general reader.

Why: fastavro's `schemaless_reader` interprets the schema for every record, a dictionary walk per
field. Measured on this machine (the dense sample records, 87 bytes, 11 fields: unions, strings,
an array, a map, a timestamp; 30,000 records, best of 5, the
collector tuned as `run` tunes it): fastavro 11 to 17 µs a record, the generated code 6 to 8.
At 10,000 events per CPU-second that is a twentieth of the budget.

What it covers, exactly as fastavro reads it (tests/decode/test_generated.py compares the two on
generated schemas and records): null, boolean, int, long, float, double, bytes, string, records,
enums, arrays, maps, unions, fixed, named references, and the logical types timestamp-millis and
-micros, local-timestamp-millis and -micros, and uuid; a logical type fastavro does not know is
read as its underlying type, as fastavro does. For anything else (date, time, decimal, recursive
types) `compile_reader` returns None and fastavro reads every record.

The generated function never decides that bytes are bad: on any error it raises, and the caller
reads the record again with fastavro, whose words go on the dead-letter record.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

#: Reads a record body from `data` at `pos`: the record and where it ended.
BodyFunction = Callable[[bytes, int], tuple[dict[str, Any], int]]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_NAIVE = datetime(1970, 1, 1)

# timedelta(0, seconds, µs): positional and already split, 0.8 µs cheaper than
# timedelta(microseconds=...) on this machine, and exact (floor division keeps negatives right).
_MILLIS = "_timedelta(0, {v} // 1000, {v} % 1000 * 1000)"
_MICROS = "_timedelta(0, {v} // 1000000, {v} % 1000000)"
#: Logical types read here, and how (the value is in `v`, the expression makes the result).
_LOGICAL = {
    ("long", "timestamp-millis"): "_EPOCH + " + _MILLIS,
    ("long", "timestamp-micros"): "_EPOCH + " + _MICROS,
    ("long", "local-timestamp-millis"): "_EPOCH_NAIVE + " + _MILLIS,
    ("long", "local-timestamp-micros"): "_EPOCH_NAIVE + " + _MICROS,
    ("string", "uuid"): "_UUID({v})",
}
#: Logical types fastavro converts that this module does not: such a schema is fastavro's.
_NOT_HERE = frozenset(
    {
        ("bytes", "decimal"),
        ("fixed", "decimal"),
        ("int", "date"),
        ("int", "time-millis"),
        ("long", "time-micros"),
    }
)
_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})


class Unsupported(Exception):
    """The schema uses something this module leaves to fastavro."""


class Bad(Exception):
    """The bytes are not a record of the schema (the caller asks fastavro why)."""


def _long(data: bytes, pos: int) -> tuple[int, int]:
    """A zig-zag varint of more than one byte (the generated code reads one-byte ones inline).

    The first four bytes are unrolled: a millisecond timestamp takes six, and this reads it in
    two thirds of the time of a plain loop."""
    b = data[pos]
    n = b & 0x7F
    if b < 0x80:
        return (n >> 1) ^ -(n & 1), pos + 1
    b = data[pos + 1]
    n |= (b & 0x7F) << 7
    if b < 0x80:
        return (n >> 1) ^ -(n & 1), pos + 2
    b = data[pos + 2]
    n |= (b & 0x7F) << 14
    if b < 0x80:
        return (n >> 1) ^ -(n & 1), pos + 3
    b = data[pos + 3]
    n |= (b & 0x7F) << 21
    shift = 28
    pos += 4
    while b & 0x80:
        if shift > 63:
            raise Bad("varint longer than 10 bytes")
        b = data[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        shift += 7
    return (n >> 1) ^ -(n & 1), pos


_GLOBALS: dict[str, Any] = {
    "_long": _long,
    "_Bad": Bad,
    "_EPOCH": _EPOCH,
    "_EPOCH_NAIVE": _EPOCH_NAIVE,
    "_timedelta": timedelta,
    "_UUID": uuid.UUID,
    "_float": struct.Struct("<f").unpack_from,
    "_double": struct.Struct("<d").unpack_from,
}


def compile_reader(schema: dict[str, Any]) -> BodyFunction | None:
    """The reader of record bodies written with `schema` (parsed by fastavro), or None when
    fastavro must read them (see the module docstring)."""
    named = dict(schema.get("__named_schemas", {}))
    writer = _Writer(named)
    try:
        writer.value(schema, "record", 1, expanding=())
    except Unsupported:
        return None
    except (KeyError, TypeError, ValueError):  # a shape fastavro accepted and this did not expect
        return None
    source = "def read(data, pos):\n    end_of_data = len(data)\n"
    source += "".join(writer.lines) + "    return record, pos\n"
    namespace = dict(_GLOBALS) | writer.constants
    exec(compile(source, "<generated Avro reader>", "exec"), namespace)
    function: BodyFunction = namespace["read"]
    return function


class _Writer:
    """Emits the statements that read one value of a schema into a variable."""

    def __init__(self, named: dict[str, Any]) -> None:
        self.named = named
        self.lines: list[str] = []
        self.constants: dict[str, Any] = {}
        self._ids = count()

    def name(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids)}"

    def emit(self, depth: int, line: str) -> None:
        self.lines.append("    " * depth + line + "\n")

    def constant(self, value: Any) -> str:
        name = self.name("_c")
        self.constants[name] = value
        return name

    def long(self, target: str, depth: int) -> None:
        """`target` = the zig-zag varint at `pos`: one byte inline, longer ones in `_long`."""
        self.emit(depth, "b = data[pos]")
        self.emit(depth, "if b < 0x80:")
        self.emit(depth + 1, f"{target} = (b >> 1) ^ -(b & 1)")
        self.emit(depth + 1, "pos += 1")
        self.emit(depth, "else:")
        self.emit(depth + 1, f"{target}, pos = _long(data, pos)")

    def raw(self, target: str, size: str, depth: int, decode: str = "") -> None:
        """`target` = the next `size` bytes (`decode=".decode()"`: as a string)."""
        self.emit(depth, f"stop = pos + {size}")
        self.emit(depth, f"if {size} < 0 or stop > end_of_data:")
        self.emit(depth + 1, "raise _Bad('past the end')")
        self.emit(depth, f"{target} = data[pos:stop]{decode}")
        self.emit(depth, "pos = stop")

    def value(self, schema: Any, target: str, depth: int, expanding: tuple[str, ...]) -> None:
        if isinstance(schema, list):
            self.union(schema, target, depth, expanding)
            return
        if isinstance(schema, str):
            if schema in _PRIMITIVES:
                self.primitive(schema, target, depth)
                return
            if schema in expanding or schema not in self.named:
                raise Unsupported(f"recursive or unknown type {schema}")
            self.value(self.named[schema], target, depth, expanding)
            return
        kind = schema["type"]
        logical = schema.get("logicalType")
        if logical is not None and isinstance(kind, str):
            if (kind, logical) in _NOT_HERE:
                raise Unsupported(f"{kind} {logical}")
            convert = _LOGICAL.get((kind, logical))
            if convert is not None:
                self.primitive(kind, target, depth)
                self.emit(depth, f"{target} = " + convert.format(v=target))
                return
        if kind == "record" or kind == "error":
            self.record(schema, target, depth, (*expanding, schema["name"]))
        elif kind == "enum":
            symbols = self.constant(tuple(schema["symbols"]))
            index = self.name("i")
            self.long(index, depth)
            self.emit(depth, f"if not 0 <= {index} < {len(schema['symbols'])}:")
            self.emit(depth + 1, "raise _Bad('enum index')")
            self.emit(depth, f"{target} = {symbols}[{index}]")
        elif kind == "fixed":
            self.raw(target, str(int(schema["size"])), depth)
        elif kind in ("array", "map"):
            self.blocks(schema, target, depth, expanding)
        else:
            self.value(kind, target, depth, expanding)  # {"type": "string"} and the like

    def primitive(self, kind: str, target: str, depth: int) -> None:
        if kind == "null":
            self.emit(depth, f"{target} = None")
        elif kind == "boolean":
            self.emit(depth, f"{target} = data[pos] != 0")
            self.emit(depth, "pos += 1")
        elif kind in ("int", "long"):
            self.long(target, depth)
        elif kind in ("float", "double"):
            self.emit(depth, f"{target} = _{kind}(data, pos)[0]")
            self.emit(depth, f"pos += {4 if kind == 'float' else 8}")
        else:  # bytes, string
            size = self.name("n")
            self.long(size, depth)
            self.raw(target, size, depth, ".decode()" if kind == "string" else "")

    def record(
        self, schema: dict[str, Any], target: str, depth: int, expanding: tuple[str, ...]
    ) -> None:
        names = []
        for field in schema["fields"]:
            variable = self.name("f")
            self.value(field["type"], variable, depth, expanding)
            names.append(f"{field['name']!r}: {variable}")
        self.emit(depth, f"{target} = {{{', '.join(names)}}}")

    def union(
        self, branches: list[Any], target: str, depth: int, expanding: tuple[str, ...]
    ) -> None:
        index = self.name("u")
        if len(branches) < 64:  # the index is one byte, branch k zig-zagged to 2k: compare that
            self.emit(depth, f"{index} = data[pos]")
            self.emit(depth, "pos += 1")
            numbers = [2 * number for number in range(len(branches))]
        else:
            self.long(index, depth)
            numbers = list(range(len(branches)))
        for number, branch in zip(numbers, branches, strict=True):
            self.emit(depth, f"{'if' if number == 0 else 'elif'} {index} == {number}:")
            self.value(branch, target, depth + 1, expanding)
        self.emit(depth, "else:")
        self.emit(depth + 1, "raise _Bad('union index')")

    def blocks(
        self, schema: dict[str, Any], target: str, depth: int, expanding: tuple[str, ...]
    ) -> None:
        """Arrays and maps: blocks of items, each block a count (negative: then its size in
        bytes), ending with a zero count."""
        kind = schema["type"]
        block = self.name("k")
        self.emit(depth, f"{target} = {'{}' if kind == 'map' else '[]'}")
        self.emit(depth, "while True:")
        self.long(block, depth + 1)
        self.emit(depth + 1, f"if {block} == 0:")
        self.emit(depth + 2, "break")
        self.emit(depth + 1, f"if {block} < 0:")
        self.emit(depth + 2, f"{block} = -{block}")
        self.long("_size", depth + 2)
        self.emit(depth + 1, f"for _ in range({block}):")
        if kind == "map":
            key, size = self.name("key"), self.name("n")
            self.long(size, depth + 2)
            self.raw(key, size, depth + 2, ".decode()")
        element = self.name("x")
        self.value(schema["values" if kind == "map" else "items"], element, depth + 2, expanding)
        if kind == "map":
            self.emit(depth + 2, f"{target}[{key}] = {element}")
        else:
            self.emit(depth + 2, f"{target}.append({element})")
