"""Mapping records onto PutEvents events: the default (identity) mapping, then each feature of a
mapping file on a clickstream-like schema, then properties that must hold for any input."""

from __future__ import annotations

import io
import json
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fastavro
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from consumer import DEFAULT_MAPPING_FILE, DEFAULT_SCHEMA_FILE
from consumer.decode import load_schema_file
from consumer.mapping import Mapper, derived_event_id, load_mapping
from consumer.mapping.mapper import _derived_event_id_fast
from consumer.mapping.validation import validate_put_events
from consumer.records import Failure, MappedEvent, Skipped, SourceRecord, Stage
from consumer.send.batching import Call

SENT_AT = datetime(2026, 11, 1, 12, 30, 5, 250_000, tzinfo=UTC)
RECORD = SourceRecord("clicks", 3, 1234, b"k", b"v", [], 1)


def default_mapper(tracking_id: str) -> Mapper:
    """The shipped mapping for the shipped schema, as `run` loads it by default."""
    schema = load_schema_file(DEFAULT_SCHEMA_FILE)
    return load_mapping(DEFAULT_MAPPING_FILE, schema, {"PERSONALIZE_TRACKING_ID": tracking_id})


def value(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "userId": "u1",
        "sessionId": "s1",
        "eventId": None,
        "eventType": "View",
        "eventValue": None,
        "itemId": None,
        "sentAt": SENT_AT,
        "recommendationId": None,
        "impression": [],
        "properties": {},
        "metricAttributionSource": None,
    }
    return base | changes


def mapped(**changes: Any) -> MappedEvent:
    outcome = default_mapper("tracker-1").map(RECORD, value(**changes))
    assert isinstance(outcome, MappedEvent), outcome
    return outcome


def failed(**changes: Any) -> Failure:
    outcome = default_mapper("tracker-1").map(RECORD, value(**changes))
    assert isinstance(outcome, Failure), outcome
    return outcome


def test_minimal_record_maps_to_minimal_event() -> None:
    m = mapped()
    assert m.session.tracking_id == "tracker-1"
    assert (m.session.user_id, m.session.session_id) == ("u1", "s1")
    assert m.event == {
        "eventId": derived_event_id("clicks", 3, 1234),
        "eventType": "View",
        "sentAt": SENT_AT,
    }


def test_every_field_is_carried_over() -> None:
    m = mapped(
        eventId="e-1",
        eventValue=9.75,
        itemId="i-9",
        recommendationId="rec-1",
        impression=["i-1", "i-9"],
        properties={"device": "ios", "numberOfRatings": "12"},
        metricAttributionSource="email-campaign",
    )
    assert m.event["eventId"] == "e-1"
    assert m.event["eventValue"] == 9.75
    assert m.event["itemId"] == "i-9"
    assert m.event["recommendationId"] == "rec-1"
    assert m.event["impression"] == ["i-1", "i-9"]
    assert json.loads(m.event["properties"]) == {"device": "ios", "numberOfRatings": "12"}
    assert m.event["metricAttribution"] == {"eventAttributionSource": "email-campaign"}


def test_anonymous_session_has_no_user_id() -> None:
    assert mapped(userId=None).session.user_id is None


def test_derived_event_id_is_stable_and_distinct_per_record() -> None:
    assert derived_event_id("t", 0, 1) == derived_event_id("t", 0, 1)
    assert len({derived_event_id("t", p, o) for p in range(3) for o in range(100)}) == 300


@given(topic=st.text(max_size=300), partition=st.integers(0, 10**6), offset=st.integers(0, 2**63))
def test_the_mappers_event_id_is_exactly_derived_event_id(
    topic: str, partition: int, offset: int
) -> None:
    assert _derived_event_id_fast(topic, partition, offset) == derived_event_id(
        topic, partition, offset
    )


def test_epoch_millis_without_logical_type_become_a_time() -> None:
    millis = int(SENT_AT.timestamp() * 1000)
    assert mapped(sentAt=millis).event["sentAt"] == SENT_AT


def test_missing_required_field_is_a_map_failure() -> None:
    v = value()
    del v["eventType"]
    outcome = default_mapper("t").map(RECORD, v)
    assert isinstance(outcome, Failure)
    assert outcome.stage is Stage.MAP
    assert "eventType" in outcome.reason


def test_too_long_event_type_is_rejected_before_sending() -> None:
    failure = failed(eventType="x" * 300)
    assert failure.stage is Stage.VALIDATE
    assert "eventType" in failure.reason


def test_reserved_property_key_is_rejected_without_echoing_values() -> None:
    failure = failed(properties={"userId": "secret-user-42"})
    assert failure.stage is Stage.VALIDATE
    assert "secret-user-42" not in failure.reason


def test_too_many_impressions_are_rejected() -> None:
    assert failed(impression=[f"i{n}" for n in range(26)]).stage is Stage.VALIDATE


def test_too_long_session_id_is_rejected() -> None:
    failure = failed(sessionId="s" * 257)
    assert failure.stage is Stage.VALIDATE
    assert "sessionId" in failure.reason


text = st.text(min_size=0, max_size=300)


@given(
    user=st.one_of(st.none(), text),
    session=text,
    event_type=text,
    item=st.one_of(st.none(), text),
    impression=st.lists(text, max_size=30),
    properties=st.dictionaries(text, text, max_size=5),
    value_=st.one_of(st.none(), st.floats(allow_nan=True)),
)
def test_any_field_values_map_or_fail_with_a_reason(
    user: str | None,
    session: str,
    event_type: str,
    item: str | None,
    impression: list[str],
    properties: dict[str, str],
    value_: float | None,
) -> None:
    outcome = SHARED.map(
        RECORD,
        value(
            userId=user,
            sessionId=session,
            eventType=event_type,
            itemId=item,
            impression=impression,
            properties=properties,
            eventValue=value_,
        ),
    )
    if isinstance(outcome, Failure):
        assert outcome.reason
        for sensitive in (user, item, *properties.values()):
            if sensitive and len(sensitive) > 3:
                assert sensitive not in outcome.reason
    else:
        assert isinstance(outcome, MappedEvent)
        assert 1 <= len(outcome.event["eventType"]) <= 256
        assert 1 <= len(outcome.session.session_id) <= 256
        # The mapper's shortcuts (sessions checked once, properties checked before encoding)
        # accept nothing the full check of the request it goes out in would reject.
        assert validate_put_events(Call(outcome.session, (outcome,)).request()) == []
        if properties:
            assert json.loads(outcome.event["properties"]) == properties


#: One mapper across examples, so sessions seen before take the remembered path.
SHARED = default_mapper("t")


# -- a mapping file on a clickstream schema of its own -----------------------------------------


def _null(schema: Any) -> list[Any]:
    return ["null", schema]


def _record(name: str, **fields: Any) -> dict[str, Any]:
    """A record schema; nullable fields default to null, maps to empty."""
    return {"type": "record", "name": name, "fields": [
        {"name": k, "type": t} | ({"default": None} if isinstance(t, list) else {})
        | ({"default": {}} if isinstance(t, dict) and t.get("type") == "map" else {})
        for k, t in fields.items()
    ]}  # fmt: skip


CLICK = _record(
    "Click",
    userId=_null("string"),
    anonymousId=_null("string"),
    session=_null(_record("Session", id=_null("string"))),
    event="string",
    messageId=_null("string"),
    visit={"type": "string", "logicalType": "uuid"},
    ts_seconds=_null("double"),
    ts_millis=_null("long"),
    ts_micros=_null("long"),
    ts_text=_null("string"),
    ts_logical=_null({"type": "long", "logicalType": "timestamp-micros"}),
    context=_record(
        "Context",
        page=_null(_record("Page", url=_null("string"))),
        campaign=_null(_record("Campaign", source=_null("string"))),
    ),
    properties={"type": "map", "values": ["null", "string", "long", "double", "boolean"]},
    item_ids=_null({"type": "array", "items": ["string", "long"]}),
    item_list=_null("string"),
    sku=_null("long"),
    num_ratings=_null("int"),
    labels={"type": "map", "values": "string"},
)
_PARSED = fastavro.parse_schema(CLICK)

FIELDS: dict[str, Any] = {
    "userId": "userId",
    "sessionId": ["session.id", "anonymousId", "userId"],
    "eventId": "messageId",
    "eventType": {"path": "event", "exclude": ["heartbeat"], "rename": {"product_viewed": "View"}},
    "sentAt": {"path": "ts_millis", "unit": "millis"},
    "eventValue": "properties.price",
    "itemId": ["properties.product_id", "sku"],
    "recommendationId": "properties.recommendation_id",
    "impression": "item_ids",
    "metricAttributionSource": "context.campaign.source",
    "properties": {"fields": ["num_ratings", "context.page.url"]},
}


def mapper_for(fields: dict[str, Any] | None = None, **top: Any) -> Mapper:
    """A mapper from a mapping file of FIELDS with `fields` replaced (None values removed)."""
    entries = {k: v for k, v in (FIELDS | (fields or {})).items() if v is not None}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mapping.yaml"
        path.write_text(yaml.safe_dump({"fields": entries, **top}))
        return load_mapping(path, CLICK, {"PERSONALIZE_TRACKING_ID": "tracker-1"})


def click(**changes: Any) -> dict[str, Any]:
    """A Click as fastavro decodes it (written and read back, so types are the real ones)."""
    base: dict[str, Any] = {
        "userId": "u-1",
        "anonymousId": "anon-1",
        "session": {"id": "s-1"},
        "event": "product_viewed",
        "visit": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "ts_millis": int(SENT_AT.timestamp() * 1000),
        "context": {"page": {"url": "https://shop.example/p/9"}, "campaign": None},
        "properties": {"product_id": "p-9", "price": 12.5},
    }
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, _PARSED, base | changes)
    buffer.seek(0)
    decoded = fastavro.schemaless_reader(buffer, _PARSED, None)
    assert isinstance(decoded, dict)
    return decoded


def event_of(mapper: Mapper, record: dict[str, Any], topic: str = "clicks") -> MappedEvent:
    outcome = mapper.map(SourceRecord(topic, 0, 7, None, b"", [], None), record)
    assert isinstance(outcome, MappedEvent), outcome
    return outcome


def failure_of(mapper: Mapper, record: dict[str, Any]) -> Failure:
    outcome = mapper.map(RECORD, record)
    assert isinstance(outcome, Failure), outcome
    return outcome


DEFAULT = mapper_for()


def test_dotted_paths_reach_into_nested_records_and_maps() -> None:
    context = {"page": None, "campaign": {"source": "newsletter"}}
    properties = {"product_id": "p-9", "recommendation_id": "rec-7"}
    m = event_of(DEFAULT, click(context=context, properties=properties))
    assert m.event["itemId"] == "p-9"  # properties.product_id: a key of a map
    assert m.event["recommendationId"] == "rec-7"
    assert m.event["metricAttribution"] == {"eventAttributionSource": "newsletter"}


def test_a_null_record_on_the_way_means_no_value() -> None:
    assert "metricAttribution" not in event_of(DEFAULT, click()).event  # campaign is null


def test_fallbacks_take_the_first_non_null() -> None:
    assert event_of(DEFAULT, click()).session.session_id == "s-1"
    assert event_of(DEFAULT, click(session=None)).session.session_id == "anon-1"
    only_user = click(session={"id": None}, anonymousId=None)
    assert event_of(DEFAULT, only_user).session.session_id == "u-1"
    failure = failure_of(DEFAULT, click(session=None, anonymousId=None, userId=None))
    assert (failure.stage, failure.error_class) == (Stage.MAP, "required")
    assert failure.reason == "sessionId: no value at session.id, anonymousId, userId"


def test_constants() -> None:
    mapper = mapper_for({"metricAttributionSource": {"const": "email"}, "eventValue": {"const": 1}})
    m = event_of(mapper, click())
    assert m.event["metricAttribution"] == {"eventAttributionSource": "email"}
    assert m.event["eventValue"] == 1


@pytest.mark.parametrize(
    ("path", "unit", "raw"),
    [
        ("ts_seconds", "seconds", SENT_AT.timestamp()),
        ("ts_millis", "millis", int(SENT_AT.timestamp() * 1000)),
        ("ts_micros", "micros", int(SENT_AT.timestamp() * 1_000_000)),
        ("ts_text", "millis", str(int(SENT_AT.timestamp() * 1000))),
        ("ts_text", "seconds", str(SENT_AT.timestamp())),
        ("ts_text", "iso8601", "2026-11-01T12:30:05.250Z"),
        ("ts_text", "iso8601", "2026-11-01T14:30:05.250+02:00"),
        ("ts_logical", "logical", SENT_AT),
    ],
)
def test_timestamp_units(path: str, unit: str, raw: Any) -> None:
    mapper = mapper_for({"sentAt": {"path": path, "unit": unit}})
    assert event_of(mapper, click(**{path: raw})).event["sentAt"] == SENT_AT


@pytest.mark.parametrize(
    ("unit", "raw", "reason"),
    [
        ("iso8601", "2026-11-01T12:30:05", "without a UTC offset"),
        ("iso8601", "last tuesday", "not an ISO-8601 time"),
        ("millis", "soon", "not a number"),
        ("micros", "9" * 30, "out of range"),
    ],
)
def test_unusable_times_fail_naming_the_field_not_the_value(
    unit: str, raw: str, reason: str
) -> None:
    failure = failure_of(
        mapper_for({"sentAt": {"path": "ts_text", "unit": unit}}), click(ts_text=raw)
    )
    assert (failure.stage, failure.error_class) == (Stage.MAP, "timestamp")
    assert failure.reason.startswith("sentAt: ") and reason in failure.reason
    assert raw not in failure.reason


def test_excluded_event_types_are_skipped_not_failed() -> None:
    record = click(event="heartbeat", ts_millis=None)  # filtered first: nothing else matters
    outcome = DEFAULT.map(RECORD, record)
    assert isinstance(outcome, Skipped) and outcome.record is RECORD


def test_only_included_event_types_pass_and_renames_apply() -> None:
    event_type = {"path": "event", "include": ["product_viewed", "Purchase"],
                  "rename": {"product_viewed": "View"}}  # fmt: skip
    mapper = mapper_for({"eventType": event_type})
    assert event_of(mapper, click()).event["eventType"] == "View"
    assert event_of(mapper, click(event="Purchase")).event["eventType"] == "Purchase"
    assert isinstance(mapper.map(RECORD, click(event="page_scrolled")), Skipped)


def test_event_value_from_a_number_or_a_numeric_string() -> None:
    assert event_of(DEFAULT, click(properties={"price": 3})).event["eventValue"] == 3
    assert event_of(DEFAULT, click(properties={"price": "4.5"})).event["eventValue"] == 4.5
    failure = failure_of(DEFAULT, click(properties={"price": "cheap"}))
    assert (failure.error_class, failure.reason) == (
        "number",
        "eventValue: not a number at properties.price",
    )


def test_impression_from_an_array_with_ids_as_strings() -> None:
    assert event_of(DEFAULT, click(item_ids=["a", 7])).event["impression"] == ["a", "7"]
    assert "impression" not in event_of(DEFAULT, click(item_ids=[])).event


def test_impression_from_a_delimited_string() -> None:
    mapper = mapper_for({"impression": {"path": "item_list", "delimiter": ","}})
    assert event_of(mapper, click(item_list="a, b,,c")).event["impression"] == ["a", "b", "c"]
    assert "impression" not in event_of(mapper, click(item_list=" , ")).event


def test_properties_from_named_fields_are_camel_case_and_keep_json_types() -> None:
    m = event_of(DEFAULT, click(num_ratings=12))
    assert m.event["properties"] == '{"numRatings":12,"url":"https://shop.example/p/9"}'
    assert (
        json.loads(event_of(DEFAULT, click(context={"page": None})).event.get("properties", "{}"))
        == {}
    )


def test_properties_with_explicit_keys_and_a_whole_map() -> None:
    properties = {
        "from": "labels",
        "fields": {"pageUrl": "context.page.url", "vip": {"const": True}},
    }
    m = event_of(
        mapper_for({"properties": properties}), click(labels={"tier": "gold", "pageUrl": "x"})
    )
    assert json.loads(m.event["properties"]) == {
        "tier": "gold",
        "pageUrl": "https://shop.example/p/9",  # a named field wins over the map's entry
        "vip": True,
    }


def test_properties_over_1024_characters_fail_validation() -> None:
    mapper = mapper_for({"properties": {"from": "labels"}})
    failure = failure_of(mapper, click(labels={"note": "n" * 1100}))
    assert (failure.stage, failure.error_class) == (Stage.VALIDATE, "max_length")
    assert "properties" in failure.reason and "nnnn" not in failure.reason


def test_a_reserved_key_from_a_map_fails_validation() -> None:
    failure = failure_of(
        mapper_for({"properties": {"from": "labels"}}), click(labels={"UserId": "x"})
    )
    assert (failure.stage, failure.error_class) == (Stage.VALIDATE, "reserved_key")


def test_event_id_from_a_field_else_derived() -> None:
    assert event_of(DEFAULT, click(messageId="m-1")).event["eventId"] == "m-1"
    assert event_of(DEFAULT, click()).event["eventId"] == derived_event_id("clicks", 0, 7)


def test_ids_of_other_types_become_strings() -> None:
    assert event_of(DEFAULT, click(properties={}, sku=42)).event["itemId"] == "42"
    by_uuid = mapper_for({"eventId": "visit"})
    assert event_of(by_uuid, click()).event["eventId"] == "12345678-1234-5678-1234-567812345678"


def test_tracking_id_per_topic() -> None:
    mapper = mapper_for(topics={"mobile": {"trackingId": "tracker-mobile"}})
    assert event_of(mapper, click(), topic="mobile").session.tracking_id == "tracker-mobile"
    assert event_of(mapper, click(), topic="web").session.tracking_id == "tracker-1"


# -- whatever the values, an outcome with a reason, and never a value in it ---------------------

anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=40),
    st.datetimes(timezones=st.just(UTC)),
    st.lists(st.one_of(st.text(max_size=10), st.integers()), max_size=30),
    st.dictionaries(
        st.text(max_size=10), st.one_of(st.text(max_size=10), st.integers(), st.none())
    ),
)
VALID = click()  # each example changes some of its fields
SENSITIVE = ("userId", "anonymousId", "messageId", "sku", "item_list", "num_ratings")


@given(
    fields=st.fixed_dictionaries({}, optional={f["name"]: anything for f in CLICK["fields"]}),
    event=st.one_of(st.sampled_from(["product_viewed", "heartbeat", "Purchase"]), anything),
    session=st.one_of(st.none(), anything.map(lambda v: {"id": v})),
    properties=st.dictionaries(st.sampled_from(["price", "product_id", "x"]), anything),
)
def test_fuzzed_values_map_fail_or_skip_never_crash(
    fields: dict[str, Any], event: Any, session: Any, properties: dict[str, Any]
) -> None:
    record = VALID | fields | {"event": event, "session": session, "properties": properties}
    outcome = DEFAULT.map(RECORD, record)
    assert isinstance(outcome, (MappedEvent, Failure, Skipped))
    if isinstance(outcome, Failure):
        assert outcome.reason and outcome.error_class
        for name in SENSITIVE:
            raw = record.get(name)
            if isinstance(raw, str) and len(raw) > 3:
                assert raw not in outcome.reason


@given(
    price=st.one_of(st.integers(-(10**6), 10**6), st.floats(-1e6, 1e6)),
    ratings=st.integers(0, 2**31 - 1),
    url=st.text(max_size=200),
)
def test_properties_round_trip_as_json(price: float, ratings: int, url: str) -> None:
    properties = {
        "fields": {
            "price": "properties.price",
            "numRatings": "num_ratings",
            "url": "context.page.url",
        }
    }
    mapper = mapper_for({"properties": properties})
    record = click(properties={"price": price}, num_ratings=ratings, context={"page": {"url": url}})
    outcome = mapper.map(RECORD, record)
    assert isinstance(outcome, MappedEvent), outcome
    assert json.loads(outcome.event["properties"]) == {
        "price": price,
        "numRatings": ratings,
        "url": url,
    }


def test_sent_at_in_micros_keeps_every_microsecond() -> None:
    mapper = mapper_for({"sentAt": {"path": "ts_micros", "unit": "micros"}})
    micros = 1_793_550_605_123_457
    expected = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)
    assert event_of(mapper, click(ts_micros=micros)).event["sentAt"] == expected
