"""Wire-format records decoded with writer schemas from a Schema Registry over real HTTP: schema
versions, references, one lookup per schema id, and `make_decoder` picking this decoder."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import fastavro
import pytest

from consumer import DEFAULT_SCHEMA_FILE
from consumer.decode import (
    SchemalessDecoder,
    WireFormatDecoder,
    load_schema_file,
    make_decoder,
)
from consumer.testing.samples import interactions
from tests.decode.registry_support import (
    AT,
    CLICK_V1,
    CLICK_V2,
    V1_RECORD,
    V2_RECORD,
    assert_failure,
    body,
    wire,
)
from tests.registry_server import RegistryServer

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
