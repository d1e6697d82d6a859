"""Mapping records onto PutEvents events with the default (identity) mapping of the shipped
schema: fields carried over, derived event ids, and what is refused before sending."""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from consumer import DEFAULT_MAPPING_FILE, DEFAULT_SCHEMA_FILE
from consumer.decode import load_schema_file
from consumer.mapping import Mapper, derived_event_id, load_mapping
from consumer.mapping.mapper import _derived_event_id_fast
from consumer.mapping.validation import validate_put_events
from consumer.records import Failure, MappedEvent, Stage
from consumer.send.batching import Call
from tests.mapping.mapper_support import (
    RECORD,
    SENT_AT,
)


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
        "sentAt": SENT_AT.timestamp(),  # epoch seconds, as botocore writes a datetime
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
    assert mapped(sentAt=millis).event["sentAt"] == SENT_AT.timestamp()


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
TEMPLATE_TEXT = re.compile(r"[A-Za-z0-9 ()_.,:'\"-]*")


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
            # A value made only of template words ("item" in "itemId: must be ...") can't be told
            # apart from the reason's own text; any other value must not appear in it.
            if sensitive and len(sensitive) > 3 and not TEMPLATE_TEXT.fullmatch(sensitive):
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
