"""The example mappings end to end: records in the example schemas (schemaless Avro) on a real
topic, `consumer run --until-caught-up` as a real process with MAPPING_FILE and AVRO_SCHEMA_FILE,
and what arrived at the local PutEvents endpoint, field by field. Filtered records must be absent
and not dead-lettered; a record the mapping cannot convert is dead-lettered naming the field."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from consumer import SCHEMAS_DIR
from consumer.deadletter.headers import H_ERROR_CLASS, H_OFFSET, H_REASON, H_STAGE
from consumer.testing.emulator import EmulatorServer
from consumer.testing.samples import InteractionEncoder, produce
from tests.integration.processes import Consumers, Deployment
from tests.integration.support import arrived, committed, end_offsets

EXAMPLES = SCHEMAS_DIR / "examples"
NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
RUN_WITHIN_S = 120


def write(bootstrap: str, topic: str, schema_file: Path, values: Sequence[dict[str, Any]]) -> None:
    """Schemaless Avro with the example's schema, one partition (offset i is record i)."""
    encoder = InteractionEncoder(schema_file)
    produce(bootstrap, topic, [encoder.encode(value) for value in values], partitions=1)


def by_event_id(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Accepted events by eventId; a replay must repeat an event exactly."""
    found: dict[str, dict[str, Any]] = {}
    for event in events:
        assert found.setdefault(event["eventId"], event) == event
    return found


def seconds(moment: datetime) -> float:
    return moment.timestamp()


# -- Segment track ------------------------------------------------------------------------------


def track(index: int, event: str, **changes: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "type": "track",
        "messageId": f"msg-{index}",
        "userId": f"user-{index % 3}",
        "anonymousId": f"anon-{index % 5}",
        "event": event,
        "timestamp": (NOW + timedelta(seconds=index)).isoformat().replace("+00:00", "Z"),
        "properties": {"product_id": f"sku-{index}", "price": 10.0 + index},
        "context": {"page": {"path": f"/p/{index}"}, "campaign": None},
    }
    return value | changes


def test_segment_track_events(
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    emulator: EmulatorServer,
    events_file: Path,
    consumers: Consumers,
) -> None:
    topic, dead_letter = new_topic(), new_topic()
    values = [
        track(0, "Product Viewed", properties={"product_id": "sku-0", "category": "shoes",
                                               "session_id": "sess-0", "price": "19.5"}),
        track(1, "Product Added", userId=None, properties={"product_id": "sku-1", "quantity": 2}),
        track(2, "Order Completed", context={"page": None, "campaign": {"source": "newsletter"}}),
        track(3, "Product Reviewed", properties={"product_id": "sku-3", "rating": 4,
                                                 "recommendation_id": "rec-9"}),
        track(4, "Product List Viewed", properties={"product_ids": "sku-4, sku-5,,sku-6"}),
        track(5, "Page Scrolled"),  # excluded
        track(6, "Signed In", timestamp="not even a time"),  # excluded: never looked at
        track(7, "Product Viewed", timestamp="2026-01-01T10:00:00"),  # no offset: dead-lettered
        track(8, "Product Shared"),  # neither excluded nor renamed: sent as it is
    ]  # fmt: skip
    write(kafka_bootstrap, topic, EXAMPLES / "segment_track.avsc", values)
    app = Deployment(kafka_bootstrap, topic, 1, dead_letter, emulator.url)
    env = app.env(
        mapping_file=EXAMPLES / "segment_track.mapping.yaml",
        avro_schema_file=EXAMPLES / "segment_track.avsc",
    )

    consumers.run_until_caught_up(env, within_s=RUN_WITHIN_S)

    events = by_event_id(arrived(emulator, events_file))
    assert set(events) == {f"msg-{i}" for i in (0, 1, 2, 3, 4, 8)}
    viewed = events["msg-0"]
    assert viewed == {
        "trackingId": "tracker-it",
        "userId": "user-0",
        "sessionId": "sess-0",  # properties.session_id comes first
        "eventId": "msg-0",
        "eventType": "View",
        "sentAt": viewed["sentAt"],
        "itemId": "sku-0",
        "eventValue": 19.5,  # a numeric string
        "properties": viewed["properties"],
    }
    assert viewed["sentAt"] == pytest.approx(seconds(NOW), abs=0.001)
    assert json.loads(viewed["properties"]) == {"category": "shoes", "pagePath": "/p/0"}
    added = events["msg-1"]
    assert (added["eventType"], added.get("userId"), added["sessionId"]) == (
        "AddToCart",
        None,  # anonymous: sent without a userId
        "anon-1",
    )
    assert json.loads(added["properties"]) == {"quantity": 2, "pagePath": "/p/1"}  # a number
    completed = events["msg-2"]
    assert completed["eventType"] == "Purchase"
    assert completed["metricAttribution"] == {"eventAttributionSource": "newsletter"}
    assert "properties" not in completed
    reviewed = events["msg-3"]
    assert (reviewed["eventType"], reviewed["eventValue"]) == ("Rating", 4)
    assert reviewed["recommendationId"] == "rec-9"
    assert events["msg-4"]["impression"] == ["sku-4", "sku-5", "sku-6"]
    assert events["msg-8"]["eventType"] == "Product Shared"

    [letter] = app.dead_letters()
    headers = dict(letter.headers() or [])
    assert headers[H_OFFSET] == b"7"
    assert (headers[H_STAGE], headers[H_ERROR_CLASS]) == (b"map", b"timestamp")
    reason = headers[H_REASON]
    assert isinstance(reason, bytes)
    assert reason.startswith(b"sentAt: ISO-8601 time without a UTC offset")
    assert b"user-1" not in reason and b"2026-01-01" not in reason
    assert app.caught_up()


# -- Snowplow enriched, two topics with a tracker each --------------------------------------------


def enriched(index: int, **changes: Any) -> dict[str, Any]:
    happened = NOW + timedelta(seconds=index)
    micros = int(happened.timestamp()) * 1_000_000 + index
    value: dict[str, Any] = {
        "app_id": "shop",
        "platform": "web",
        "collector_tstamp": micros + 500_000,
        "derived_tstamp": micros,
        "event_id": uuid.UUID(int=index + 1),
        "user_id": None,
        "domain_userid": f"duid-{index % 4}",
        "domain_sessionid": f"dsid-{index % 4}",
        "event_name": "page_view",
    }
    return value | changes


def test_snowplow_enriched_events_on_two_topics_with_two_trackers(
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    emulator: EmulatorServer,
    events_file: Path,
    consumers: Consumers,
    tmp_path: Path,
) -> None:
    web, mobile, dead_letter = new_topic(), new_topic(), new_topic()
    web_values = [
        enriched(0, user_id="alice"),
        enriched(1, event_name="event", event="struct", se_action="rate", se_label="sku-1",
                 se_value=4.5, se_category="reviews"),
        enriched(2, event_name="transaction_item", ti_sku="sku-2", ti_price=19.99, ti_quantity=2,
                 derived_tstamp=None, mkt_source="email"),
        enriched(3, event_name="page_ping"),  # not included
        enriched(4, event_name="event", se_action="scroll"),  # not included
        enriched(5, event_name="add_to_cart", domain_sessionid=None, network_userid="nuid-5"),
    ]  # fmt: skip
    mobile_values = [enriched(10, platform="mob"), enriched(11, event_name="link_click")]
    schema_file = EXAMPLES / "snowplow_enriched.avsc"
    write(kafka_bootstrap, web, schema_file, web_values)
    write(kafka_bootstrap, mobile, schema_file, mobile_values)
    # The example file, plus a tracker for the mobile topic from the environment.
    mapping = yaml.safe_load((EXAMPLES / "snowplow_enriched.mapping.yaml").read_text())
    mapping["topics"] = {mobile: {"trackingId": "${MOBILE_TRACKING_ID}"}}
    mapping_file = tmp_path / "snowplow.mapping.yaml"
    mapping_file.write_text(yaml.safe_dump(mapping))
    app = Deployment(kafka_bootstrap, web, 1, dead_letter, emulator.url)
    env = app.env(
        source_topics=f"{web},{mobile}",
        mapping_file=mapping_file,
        avro_schema_file=schema_file,
        mobile_tracking_id="tracker-mobile",
    )

    consumers.run_until_caught_up(env, within_s=RUN_WITHIN_S)

    events = by_event_id(arrived(emulator, events_file))
    ids = {index: str(uuid.UUID(int=index + 1)) for index in range(12)}
    assert set(events) == {ids[i] for i in (0, 1, 2, 5, 10)}
    view = events[ids[0]]
    assert view == {
        "trackingId": "tracker-it",
        "userId": "alice",
        "sessionId": "dsid-0",
        "eventId": ids[0],
        "eventType": "View",
        "sentAt": view["sentAt"],
        "properties": view["properties"],
    }
    assert view["sentAt"] == pytest.approx(seconds(NOW), abs=0.001)  # derived_tstamp, in µs
    assert json.loads(view["properties"]) == {"platform": "web", "appId": "shop"}
    rating = events[ids[1]]
    assert (rating["eventType"], rating["itemId"], rating["eventValue"]) == ("Rating", "sku-1", 4.5)
    assert rating["userId"] == "duid-1"  # no user_id: the cookie id
    assert json.loads(rating["properties"])["seCategory"] == "reviews"
    purchase = events[ids[2]]
    assert (purchase["eventType"], purchase["itemId"], purchase["eventValue"]) == (
        "Purchase",
        "sku-2",
        19.99,
    )
    assert purchase["metricAttribution"] == {"eventAttributionSource": "email"}
    assert json.loads(purchase["properties"])["tiQuantity"] == 2
    expected = seconds(NOW + timedelta(seconds=2)) + 0.5  # no derived_tstamp: the collector's
    assert purchase["sentAt"] == pytest.approx(expected, abs=0.001)
    assert events[ids[5]]["sessionId"] == "nuid-5"
    assert (events[ids[10]]["trackingId"], events[ids[10]]["eventType"]) == (
        "tracker-mobile",
        "View",
    )

    assert app.dead_letters() == []
    for topic in (web, mobile):
        assert committed(kafka_bootstrap, app.group, topic, 1) == end_offsets(
            kafka_bootstrap, topic, 1
        )


def test_a_wrong_mapping_file_stops_start_up_naming_the_entry(tmp_path: Path) -> None:
    mapping = yaml.safe_load((EXAMPLES / "segment_track.mapping.yaml").read_text())
    mapping["fields"]["sessionId"] = ["properties.session_id", "anonymousID", "userId"]
    mapping_file = tmp_path / "mapping.yaml"
    mapping_file.write_text(yaml.safe_dump(mapping))
    app = Deployment("127.0.0.1:9", "clicks", 1, "clicks.dead-letter", "http://127.0.0.1:9")
    env = app.env(mapping_file=mapping_file, avro_schema_file=EXAMPLES / "segment_track.avsc")
    done = subprocess.run(
        [sys.executable, "-m", "consumer", "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert (
        "MAPPING_FILE fields.sessionId.path[1]: 'anonymousID' is not a field of record Track "
        "(did you mean 'anonymousId'?)"
    ) in done.stderr
