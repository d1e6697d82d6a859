"""Schema Registry failures: unknown ids and bad schemas are dead-letter `Failure`s, outages are
`RegistryUnavailable` (retried), refused credentials fatal, and no bytes crash the decoder."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consumer.decode import (
    RegistryUnavailable,
    WireFormatDecoder,
)
from consumer.decode.registry import SchemaRegistry
from consumer.errors import FatalError, RegistryAccessDenied, TransientError
from consumer.records import Failure, Stage
from tests.decode.registry_support import (
    CLICK_V1,
    CLICK_V2,
    V1_RECORD,
    V2_RECORD,
    FakeClock,
    assert_failure,
    wire,
)
from tests.registry_server import Outage, RegistryServer, basic_auth_header

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
