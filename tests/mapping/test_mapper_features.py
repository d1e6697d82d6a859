"""Each feature of a mapping file, on a clickstream-like schema of its own: dotted paths,
fallbacks, constants, timestamp units, event-type filters, impressions, properties, ids."""

from __future__ import annotations

import json
from typing import Any

import pytest

from consumer.mapping import derived_event_id
from consumer.records import Skipped, Stage
from tests.mapping.mapper_support import (
    DEFAULT,
    RECORD,
    SENT_AT,
    click,
    event_of,
    failure_of,
    mapper_for,
)

# -- a mapping file on a clickstream schema of its own -----------------------------------------


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
    assert event_of(mapper, click(**{path: raw})).event["sentAt"] == SENT_AT.timestamp()


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
