"""Confluent wire format: magic byte 0, a 4-byte big-endian schema id, then the Avro body.

Per record there is one dict lookup (keyed by the 5-byte header itself, so it checks the magic
byte for free) and fastavro's read; the writer schema behind an id is fetched and planned once.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from consumer.decode.registry import RegistryUnavailable, SchemaNotUsable, SchemaSource
from consumer.decode.schema import AlwaysFails, BodyReader, parse_record
from consumer.decode.schemaless import EMPTY
from consumer.records import Failure, Stage

MAGIC_BYTE = 0
HEADER_SIZE = 5


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
            None if reader_schema is None else parse_record(reader_schema, "the reader schema")
        )
        #: By the 5-byte header: one lookup per record finds the plan and checks the magic byte.
        self._bodies: dict[bytes, BodyReader | AlwaysFails] = {}
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
            return EMPTY
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

    def _load(self, schema_id: int) -> BodyReader | AlwaysFails | Failure:
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
                return AlwaysFails(failure)  # the schema behind an id never changes
            if len(self._unknown) >= 10_000:  # garbage headers must not grow this without bound
                self._unknown.clear()
            self._unknown[schema_id] = (now + self._unknown_ttl_s, failure)
            return failure
        return BodyReader(writer, self._reader_schema, f" for schema id {schema_id}")
