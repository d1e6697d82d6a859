"""Properties of a mapping file's mapper that must hold for any input: an outcome with a reason
and never a value in it, event properties round-tripping as JSON, and microsecond times."""

from __future__ import annotations

import calendar
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from consumer.records import Failure, MappedEvent, Skipped
from tests.mapping.mapper_support import (
    CLICK,
    DEFAULT,
    RECORD,
    click,
    event_of,
    mapper_for,
)

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
            if isinstance(raw, str) and len(raw) > 3 and raw in outcome.reason:
                # Only a leak if it is there because of the value: "even" is in "eventType".
                stand_in = DEFAULT.map(RECORD, record | {name: "\N{SNOWMAN}" * len(raw)})
                assert isinstance(stand_in, Failure) and raw in stand_in.reason, outcome.reason


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
    as_botocore_writes_it = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)
    assert event_of(mapper, click(ts_micros=micros)).event["sentAt"] == _seconds(
        as_botocore_writes_it
    )


def _seconds(when: datetime) -> float:
    """botocore's rest-json serializer: epoch seconds with the microseconds, one rounding."""
    return (calendar.timegm(when.utctimetuple()) * 10**6 + when.microsecond) / 10**6


def test_remembered_property_encodings_never_mix_up_equal_looking_values() -> None:
    mapper = mapper_for({"properties": {"from": "labels"}})
    seen = []
    for labels in ({"vip": "1"}, {"vip": "1"}, {"vip": "true"}, {"vip": "1.0"}, {"vip": "1"}):
        seen.append(event_of(mapper, click(labels=labels)).event["properties"])
    assert seen == ['{"vip":"1"}', '{"vip":"1"}', '{"vip":"true"}', '{"vip":"1.0"}', '{"vip":"1"}']
