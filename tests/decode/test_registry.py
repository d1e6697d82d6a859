"""Confluent wire format with writer schemas from a Schema Registry (over real HTTP).

What matters: records written with different versions of a schema all decode, to the reader
schema's shape when there is one; the registry is asked once per schema id; an id it doesn't have
is a dead-letter `Failure` but an outage never is (`RegistryUnavailable`, retried later); and no
bytes whatsoever make the decoder crash.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consumer import DEFAULT_SCHEMA_FILE
from consumer.decode import (
    RegistryUnavailable,
    SchemalessDecoder,
    WireFormatDecoder,
    load_schema_file,
    make_decoder,
)
from consumer.decode.registry import SchemaRegistry
from consumer.errors import FatalError, RegistryAccessDenied, TransientError
from consumer.records import Failure, Stage
from consumer.testing.samples import interactions
from tests.registry_server import Outage, RegistryServer, basic_auth_header

AT = datetime(2026, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC)

#: Version 1 of a clickstream schema, and version 2: `legacyScore` removed, `device` and `tags`
#: added, all with defaults (the evolution BACKWARD/FULL compatibility allows).
CLICK_V1: dict[str, Any] = {
    "type": "record",
    "name": "Click",
    "namespace": "shop",
    "fields": [
        {"name": "userId", "type": "string"},
        {"name": "itemId", "type": "string"},
        {"name": "legacyScore", "type": "int", "default": 0},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    ],
}
CLICK_V2: dict[str, Any] = {
    "type": "record",
    "name": "Click",
    "namespace": "shop",
    "fields": [
        {"name": "userId", "type": "string"},
        {"name": "itemId", "type": "string"},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "device", "type": ["null", "string"], "default": None},
        {"name": "tags", "type": {"type": "array", "items": "string"}, "default": []},
    ],
}
V1_RECORD = {"userId": "u1", "itemId": "i1", "legacyScore": 7, "at": AT}
V2_RECORD = {"userId": "u2", "itemId": "i2", "at": AT, "device": "ios", "tags": ["a"]}


def body(schema: dict[str, Any], record: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(schema), record)
    return buffer.getvalue()


def wire(schema_id: int, schema: dict[str, Any], record: dict[str, Any]) -> bytes:
    """Confluent wire format by hand: magic byte, big-endian schema id, schemaless Avro."""
    return b"\0" + schema_id.to_bytes(4, "big") + body(schema, record)


@pytest.fixture
def registry() -> Iterator[RegistryServer]:
    with RegistryServer() as server:
        yield server


class FakeClock:
    """Time that passes only when a test says so: no sleeping, no flakiness."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def connect() -> Iterator[Callable[..., WireFormatDecoder]]:
    """Make decoders against a registry URL; closes them (their HTTP clients) afterwards."""
    made: list[WireFormatDecoder] = []

    def make(
        url: str,
        reader: dict[str, Any] | None = None,
        basic_auth: str | None = None,
        timeout_s: float = 5.0,
        unknown_id_ttl_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> WireFormatDecoder:
        schemas = SchemaRegistry.connect(url, basic_auth, timeout_s=timeout_s)
        decoder = WireFormatDecoder(
            schemas, reader, unknown_id_ttl_s=unknown_id_ttl_s, retry_after_s=1.0, clock=clock
        )
        made.append(decoder)
        return decoder

    yield make
    for decoder in made:
        decoder.close()


def assert_failure(outcome: object, error_class: str) -> Failure:
    assert isinstance(outcome, Failure), outcome
    assert outcome.stage is Stage.DECODE
    assert outcome.error_class == error_class, outcome
    assert outcome.reason
    return outcome


# -- schema evolution --------------------------------------------------------------------------


def test_v1_and_v2_in_one_stream_decode_in_their_writers_shape_without_a_reader(
    registry: RegistryServer, connect: Callable[..., WireFormatDecoder]
) -> None:
    v1 = registry.register("clicks-value", CLICK_V1)
    v2 = registry.register("clicks-value", CLICK_V2)
    decoder = connect(registry.url)
    stream = [wire(v1, CLICK_V1, V1_RECORD), wire(v2, CLICK_V2, V2_RECORD)] * 3
    assert [decoder.decode(v) for v in stream] == [V1_RECORD, V2_RECORD] * 3


def test_v1_and_v2_in_one_stream_decode_to_the_reader_shape(
    registry: RegistryServer, connect: Callable[..., WireFormatDecoder]
) -> None:
    v1 = registry.register("clicks-value", CLICK_V1)
    v2 = registry.register("clicks-value", CLICK_V2)
    decoder = connect(registry.url, reader=CLICK_V2)
    stream = [wire(v1, CLICK_V1, V1_RECORD), wire(v2, CLICK_V2, V2_RECORD)] * 3
    decoded = [decoder.decode(v) for v in stream]
    from_v1 = {"userId": "u1", "itemId": "i1", "at": AT, "device": None, "tags": []}
    assert decoded == [from_v1, V2_RECORD] * 3
    # a list default is each record's own: changing one doesn't change the next
    first = decoded[0]
    assert isinstance(first, dict)
    first["tags"].append("changed")
    assert decoder.decode(stream[0]) == from_v1


def test_older_reader_drops_newer_fields_and_fills_removed_ones(
    registry: RegistryServer, connect: Callable[..., WireFormatDecoder]
) -> None:
    """A consumer still on v1 reads v2 records (FORWARD compatibility)."""
    v2 = registry.register("clicks-value", CLICK_V2)
    decoder = connect(registry.url, reader=CLICK_V1)
    expected = {"userId": "u2", "itemId": "i2", "legacyScore": 0, "at": AT}
    assert decoder.decode(wire(v2, CLICK_V2, V2_RECORD)) == expected


def test_a_reader_needing_full_resolution_gets_what_fastavro_resolution_gives(
    registry: RegistryServer, connect: Callable[..., WireFormatDecoder]
) -> None:
    """Renames (aliases) and type promotions go through fastavro's resolution, unchanged."""
    reader = {
        "type": "record",
        "name": "Click",
        "namespace": "shop",
        "fields": [
            {"name": "user", "aliases": ["userId"], "type": "string"},
            {"name": "legacyScore", "type": "double", "default": 0.0},  # int promoted
            {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        ],
    }
    v1 = registry.register("clicks-value", CLICK_V1)
    decoder = connect(registry.url, reader=reader)
    expected = fastavro.schemaless_reader(
        io.BytesIO(body(CLICK_V1, V1_RECORD)),
        fastavro.parse_schema(CLICK_V1),
        fastavro.parse_schema(reader),
    )
    assert expected == {"user": "u1", "legacyScore": 7.0, "at": AT}
    assert decoder.decode(wire(v1, CLICK_V1, V1_RECORD)) == expected


def test_a_writer_the_reader_cannot_resolve_is_a_decode_failure(
    registry: RegistryServer, connect: Callable[..., WireFormatDecoder]
) -> None:
    reader = CLICK_V2 | {
        "fields": [*CLICK_V2["fields"], {"name": "required", "type": "string"}]  # no default
    }
    v1 = registry.register("clicks-value", CLICK_V1)
    decoder = connect(registry.url, reader=reader)
    failure = assert_failure(decoder.decode(wire(v1, CLICK_V1, V1_RECORD)), "SchemaResolutionError")
    assert "schema id 1" in failure.reason


def test_records_from_confluents_own_serializer_decode(
    registry: RegistryServer, connect: Callable[..., WireFormatDecoder]
) -> None:
    """The producer side as real applications do it: AvroSerializer, auto-registering."""
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    client = SchemaRegistryClient({"url": registry.url})
    context = SerializationContext("clicks", MessageField.VALUE)
    try:
        values = [
            AvroSerializer(client, json.dumps(CLICK_V1))(V1_RECORD, context),
            AvroSerializer(client, json.dumps(CLICK_V2))(V2_RECORD, context),
        ]
    finally:
        client.close()
    decoder = connect(registry.url, reader=CLICK_V2)
    assert [decoder.decode(v) for v in values] == [
        {"userId": "u1", "itemId": "i1", "at": AT, "device": None, "tags": []},
        V2_RECORD,
    ]


def test_the_shipped_interaction_schema_round_trips_through_the_registry(
    registry: RegistryServer, connect: Callable[..., WireFormatDecoder]
) -> None:
    schema = json.loads(DEFAULT_SCHEMA_FILE.read_text())
    schema_id = registry.register("clickstream-value", schema)
    decoder = connect(registry.url)
    originals = list(interactions(50))
    assert [decoder.decode(wire(schema_id, schema, r)) for r in originals] == originals


def test_schema_references_are_followed(
    registry: RegistryServer, connect: Callable[..., WireFormatDecoder]
) -> None:
    money = {
        "type": "record",
        "name": "Money",
        "namespace": "shop",
        "fields": [{"name": "cents", "type": "long"}, {"name": "currency", "type": "string"}],
    }
    order = {
        "type": "record",
        "name": "Order",
        "namespace": "shop",
        "fields": [{"name": "orderId", "type": "string"}, {"name": "total", "type": "shop.Money"}],
    }
    registry.register("money", money)
    order_id = registry.register(
        "orders-value", order, references=[{"name": "shop.Money", "subject": "money", "version": 1}]
    )
    decoder = connect(registry.url)
    record = {"orderId": "o1", "total": {"cents": 1999, "currency": "EUR"}}
    named: dict[str, Any] = {}
    fastavro.parse_schema(money, named)
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(order, named), record)
    value = b"\0" + order_id.to_bytes(4, "big") + buffer.getvalue()
    assert decoder.decode(value) == record


def test_a_reference_the_registry_does_not_have_is_a_decode_failure(
    registry: RegistryServer, connect: Callable[..., WireFormatDecoder]
) -> None:
    order = {
        "type": "record",
        "name": "Order",
        "fields": [{"name": "total", "type": "shop.Money"}],
    }
    order_id = registry.register(
        "orders-value", order, references=[{"name": "shop.Money", "subject": "gone", "version": 1}]
    )
    decoder = connect(registry.url)
    value = b"\0" + order_id.to_bytes(4, "big") + b"\x02"
    assert_failure(decoder.decode(value), "UnknownSchemaId")


# -- caching -----------------------------------------------------------------------------------


def test_the_registry_is_asked_once_per_schema_id(
    registry: RegistryServer, connect: Callable[..., WireFormatDecoder]
) -> None:
    v1 = registry.register("clicks-value", CLICK_V1)
    v2 = registry.register("clicks-value", CLICK_V2)
    decoder = connect(registry.url, reader=CLICK_V2)
    values = [wire(v1, CLICK_V1, V1_RECORD), wire(v2, CLICK_V2, V2_RECORD)]
    for i in range(2_000):
        assert isinstance(decoder.decode(values[i % 2]), dict)
    assert (registry.lookups(v1), registry.lookups(v2)) == (1, 1)
    assert len(registry.requests) == 2


def test_cached_schemas_keep_decoding_through_an_outage(
    registry: RegistryServer, connect: Callable[..., WireFormatDecoder]
) -> None:
    v1 = registry.register("clicks-value", CLICK_V1)
    decoder = connect(registry.url)
    value = wire(v1, CLICK_V1, V1_RECORD)
    assert decoder.decode(value) == V1_RECORD
    with registry.outage("unavailable"):
        assert decoder.decode(value) == V1_RECORD
    assert registry.lookups(v1) == 1


# -- permanent failures ------------------------------------------------------------------------


def test_an_unknown_schema_id_is_a_decode_failure_remembered_for_a_while(
    registry: RegistryServer, connect: Callable[..., WireFormatDecoder]
) -> None:
    decoder = connect(registry.url)
    value = wire(42, CLICK_V1, V1_RECORD)
    failure = assert_failure(decoder.decode(value), "UnknownSchemaId")
    assert "42" in failure.reason and "40403" in failure.reason
    assert "u1" not in failure.reason  # no record data in reasons
    assert decoder.decode(value) == failure
    assert registry.lookups(42) == 1  # a burst of such records costs one lookup


def test_an_id_registered_after_its_first_record_is_found_once_the_memory_lapses(
    registry: RegistryServer, connect: Callable[..., WireFormatDecoder]
) -> None:
    """A lagging registry replica: the id is unknown at first, known a moment later."""
    decoder = connect(registry.url, unknown_id_ttl_s=0.0)
    value = wire(1, CLICK_V1, V1_RECORD)
    assert_failure(decoder.decode(value), "UnknownSchemaId")
    assert registry.register("clicks-value", CLICK_V1) == 1
    assert decoder.decode(value) == V1_RECORD


@pytest.mark.parametrize(
    ("schema", "schema_type", "error_class"),
    [
        ('syntax = "proto3"; message C { string u = 1; }', "PROTOBUF", "UnsupportedSchemaType"),
        ('{"type": "object"}', "JSON", "UnsupportedSchemaType"),
        (
            '{"type": "record", "name": "X", "fields": [{"name": "a", "type": "nope"}]}',
            "AVRO",
            "InvalidSchema",
        ),
        ('"string"', "AVRO", "NotARecord"),
        ("{not json", "AVRO", "InvalidSchema"),
    ],
)
def test_a_schema_that_is_not_an_avro_record_fails_every_record_of_its_id(
    registry: RegistryServer,
    connect: Callable[..., WireFormatDecoder],
    schema: str,
    schema_type: str,
    error_class: str,
) -> None:
    schema_id = registry.register("other-value", schema, schema_type=schema_type)
    decoder = connect(registry.url)
    value = b"\0" + schema_id.to_bytes(4, "big") + b"\x02a"
    failure = assert_failure(decoder.decode(value), error_class)
    assert decoder.decode(value) == failure
    assert registry.lookups(schema_id) == 1  # the schema behind an id never changes


@pytest.mark.parametrize(
    ("value", "error_class"),
    [
        (None, "EmptyValue"),
        (b"", "EmptyValue"),
        (b"\x01\x00\x00\x00\x01\x02", "UnknownMagicByte"),
        (b'{"userId": "u1"}', "UnknownMagicByte"),
        (b"\x00\x00\x00", "ShortHeader"),
    ],
)
def test_bytes_without_a_wire_format_header_fail_without_asking_the_registry(
    registry: RegistryServer,
    connect: Callable[..., WireFormatDecoder],
    value: bytes | None,
    error_class: str,
) -> None:
    decoder = connect(registry.url)
    assert_failure(decoder.decode(value), error_class)
    assert registry.requests == []


def test_bad_avro_after_a_good_header_is_a_decode_failure(
    registry: RegistryServer, connect: Callable[..., WireFormatDecoder]
) -> None:
    v1 = registry.register("clicks-value", CLICK_V1)
    decoder = connect(registry.url)
    good = wire(v1, CLICK_V1, V1_RECORD)
    truncated = decoder.decode(good[:-3])
    assert isinstance(truncated, Failure) and truncated.stage is Stage.DECODE
    assert "schema id 1" in truncated.reason
    assert_failure(decoder.decode(good + b"\x00"), "TrailingBytes")
    assert decoder.decode(good) == V1_RECORD


# -- outages -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["unavailable", "drop", "hang", "down"])
def test_an_outage_raises_registry_unavailable_and_decoding_resumes_after_it(
    registry: RegistryServer, connect: Callable[..., WireFormatDecoder], kind: Outage
) -> None:
    v1 = registry.register("clicks-value", CLICK_V1)
    clock = FakeClock()
    decoder = connect(registry.url, timeout_s=0.3, clock=clock)
    value = wire(v1, CLICK_V1, V1_RECORD)
    with registry.outage(kind):
        started = time.monotonic()
        with pytest.raises(RegistryUnavailable) as raised:
            decoder.decode(value)
        assert time.monotonic() - started < 5  # the poll loop is held up briefly, at most
    assert isinstance(raised.value, TransientError)  # the pipeline holds the partition back
    assert raised.value.schema_id == v1
    assert raised.value.status == (503 if kind == "unavailable" else None)
    assert "schema id 1" in str(raised.value)
    assert registry.lookups(v1) == (0 if kind == "down" else 1)
    # Nothing was remembered about the id: once the registry is back, it is asked again.
    clock.advance(1.0)
    assert decoder.decode(value) == V1_RECORD


def test_right_after_a_failed_fetch_other_fetches_fail_without_waiting_on_the_registry(
    registry: RegistryServer, connect: Callable[..., WireFormatDecoder]
) -> None:
    """A hanging registry costs the poll loop one timeout, not one per held-back partition."""
    v1 = registry.register("clicks-value", CLICK_V1)
    v2 = registry.register("clicks-value", CLICK_V2)
    clock = FakeClock()
    decoder = connect(registry.url, timeout_s=0.3, clock=clock)
    with registry.outage("hang"):
        with pytest.raises(RegistryUnavailable):
            decoder.decode(wire(v1, CLICK_V1, V1_RECORD))
        with pytest.raises(RegistryUnavailable) as raised:
            decoder.decode(wire(v2, CLICK_V2, V2_RECORD))
        assert raised.value.schema_id == v2 and "ReadTimeout" in str(raised.value)
        assert (registry.lookups(v1), registry.lookups(v2)) == (1, 0)  # v2 was not even asked
        clock.advance(1.0)
        with pytest.raises(RegistryUnavailable):
            decoder.decode(wire(v2, CLICK_V2, V2_RECORD))
        assert registry.lookups(v2) == 1  # asked again once the pause is over
    clock.advance(1.0)
    assert decoder.decode(wire(v2, CLICK_V2, V2_RECORD)) == V2_RECORD


def test_registry_unavailable_says_what_failed_without_credentials(
    connect: Callable[..., WireFormatDecoder],
) -> None:
    with RegistryServer() as server:
        url = server.url
    decoder = connect(url.replace("http://", "http://user:s3cret@"), timeout_s=0.3)
    with pytest.raises(RegistryUnavailable) as raised:
        decoder.decode(wire(3, CLICK_V1, V1_RECORD))
    message = str(raised.value)
    assert "schema id 3" in message and "ConnectError" in message
    assert "s3cret" not in message


# -- authentication ----------------------------------------------------------------------------


def test_basic_auth_credentials_are_sent(connect: Callable[..., WireFormatDecoder]) -> None:
    with RegistryServer(credentials=("svc-consumer", "pa:ss")) as registry:
        v1 = registry.register("clicks-value", CLICK_V1)
        decoder = connect(registry.url, basic_auth="svc-consumer:pa:ss")
        assert decoder.decode(wire(v1, CLICK_V1, V1_RECORD)) == V1_RECORD
        assert [r.authorization for r in registry.requests] == [
            basic_auth_header("svc-consumer", "pa:ss")
        ]


@pytest.mark.parametrize("basic_auth", [None, "svc-consumer:wrong"])
def test_refused_credentials_are_access_denied_never_a_dead_letter(
    connect: Callable[..., WireFormatDecoder], basic_auth: str | None
) -> None:
    with RegistryServer(credentials=("svc-consumer", "right")) as registry:
        v1 = registry.register("clicks-value", CLICK_V1)
        decoder = connect(registry.url, basic_auth=basic_auth)
        with pytest.raises(RegistryAccessDenied) as raised:
            decoder.decode(wire(v1, CLICK_V1, V1_RECORD))
    assert isinstance(raised.value, FatalError)  # stops the consumer: it won't fix itself
    assert "HTTP 401" in str(raised.value)
    assert "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO" in str(raised.value)
    assert "wrong" not in str(raised.value)


# -- fuzzing -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_registry() -> Iterator[tuple[RegistryServer, WireFormatDecoder]]:
    with RegistryServer() as registry:
        registry.register("clicks-value", CLICK_V1)  # id 1
        registry.register("clicks-value", CLICK_V2)  # id 2
        registry.register("other-value", "{}", schema_type="JSON")  # id 3
        decoder = WireFormatDecoder(
            SchemaRegistry.connect(registry.url, timeout_s=2), CLICK_V2, retry_after_s=0.0
        )
        yield registry, decoder
        decoder.close()


headers = st.one_of(
    st.binary(max_size=6),
    st.integers(0, 5).map(lambda i: b"\0" + i.to_bytes(4, "big")),
    st.integers(0, 2**32 - 1).map(lambda i: b"\0" + i.to_bytes(4, "big")),
)


@settings(deadline=None)
@given(header=headers, rest=st.binary(max_size=80), outage=st.booleans())
def test_arbitrary_bytes_decode_fail_or_are_retried_never_crash(
    fuzz_registry: tuple[RegistryServer, WireFormatDecoder],
    header: bytes,
    rest: bytes,
    outage: bool,
) -> None:
    registry, decoder = fuzz_registry
    value = header + rest
    try:
        if outage:
            with registry.outage("unavailable"):
                outcome = decoder.decode(value)
        else:
            outcome = decoder.decode(value)
    except RegistryUnavailable:
        assert outage
        return
    assert isinstance(outcome, dict | Failure)
    if isinstance(outcome, Failure):
        assert outcome.stage is Stage.DECODE and outcome.reason


# -- the factory -------------------------------------------------------------------------------


def test_make_decoder_picks_wire_format_when_a_registry_is_set(registry: RegistryServer) -> None:
    v1 = registry.register("clicks-value", CLICK_V1)
    decoder = make_decoder(load_schema_file(DEFAULT_SCHEMA_FILE), registry.url, None, CLICK_V2)
    try:
        assert isinstance(decoder, WireFormatDecoder)
        assert decoder.decode(wire(v1, CLICK_V1, V1_RECORD)) == {
            "userId": "u1",
            "itemId": "i1",
            "at": AT,
            "device": None,
            "tags": [],
        }
    finally:
        decoder.close()


def test_make_decoder_is_schemaless_without_a_registry() -> None:
    decoder = make_decoder(load_schema_file(DEFAULT_SCHEMA_FILE), None, None, None)
    assert isinstance(decoder, SchemalessDecoder)


@pytest.mark.parametrize(
    ("url", "basic_auth"),
    [
        ("ftp://svc:s3cret@registry:8081", None),
        ("http://registry:8081", "no-colon"),
        ("http://user:pw@registry:8081", "user:pw"),  # credentials twice
        (None, "user:pw"),  # credentials for no registry
    ],
)
def test_make_decoder_rejects_bad_registry_settings(
    url: str | None, basic_auth: str | None
) -> None:
    with pytest.raises(ValueError) as raised:
        make_decoder(load_schema_file(DEFAULT_SCHEMA_FILE), url, basic_auth, None)
    assert "s3cret" not in str(raised.value)
