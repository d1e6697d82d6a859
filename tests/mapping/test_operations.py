"""Topics that feed PutItems, PutUsers, PutActions and PutActionInteractions: the mapping file's
`topics` entries checked at start-up, and records mapped to the operation's entries."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from consumer import DEFAULT_SCHEMA_FILE, SCHEMAS_DIR
from consumer.decode import load_schema_file
from consumer.mapping import EntryMapper, MappingError, RoutePlan, load_file
from consumer.records import Failure, MappedEvent, SessionKey, SourceRecord, Stage

EXAMPLES = SCHEMAS_DIR / "examples"
AT = datetime(2026, 11, 30, tzinfo=UTC)
ITEMS_ARN = "arn:aws:personalize:eu-west-1:123456789012:dataset/shop/ITEMS"
ENV = {
    "PERSONALIZE_TRACKING_ID": "tracker",
    "ITEMS_TOPIC": "items",
    "ITEMS_DATASET_ARN": ITEMS_ARN,
    "USERS_TOPIC": "users",
    "USERS_DATASET_ARN": ITEMS_ARN.replace("ITEMS", "USERS"),
}
ACTION = {
    "type": "record",
    "name": "Action",
    "fields": [
        {"name": "action_id", "type": "string"},
        {"name": "user", "type": ["null", "string"], "default": None},
        {"name": "session", "type": "string"},
        {"name": "kind", "type": "string"},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "value", "type": ["null", "double"], "default": None},
        {"name": "tags", "type": {"type": "array", "items": "string"}, "default": []},
    ],
}


def routes_of(path: Path, env: dict[str, str] = ENV) -> dict[str, RoutePlan]:
    return load_file(path, load_schema_file(DEFAULT_SCHEMA_FILE), env, load_schema_file)[1]


def record(topic: str, offset: int = 7, partition: int = 0) -> SourceRecord:
    return SourceRecord(topic, partition, offset, None, b"", (), None)


def mapping_file(tmp_path: Path, topics: str) -> Path:
    (tmp_path / "action.avsc").write_text(json.dumps(ACTION))
    default = (SCHEMAS_DIR / "interaction.mapping.yaml").read_text()
    path = tmp_path / "mapping.yaml"
    path.write_text(default + "topics:\n" + topics)
    return path


def item(**changes: Any) -> dict[str, Any]:
    value = {
        "sku": "sku-1",
        "title": "Blue shoes",
        "price": 19.5,
        "category": {"level1": "shoes", "level2": None},
        "genres": ["running", "outdoor"],
        "in_stock": True,
        "created_at": 1_700_000_000,
    }
    return value | changes


def test_the_item_example_maps_items_with_lists_joined_and_nulls_left_out() -> None:
    route = routes_of(EXAMPLES / "item_catalog.mapping.yaml")["items"]
    outcome = EntryMapper(route).map(record("items"), item())
    assert isinstance(outcome, MappedEvent)
    assert outcome.session == SessionKey(ITEMS_ARN, None, "items/0", "PutItems")
    assert outcome.event["itemId"] == "sku-1"
    assert json.loads(outcome.event["properties"]) == {
        "title": "Blue shoes",
        "price": 19.5,
        "categoryL1": "shoes",
        "genres": "running|outdoor",
        "inStock": True,
        "creationTimestamp": 1_700_000_000,
    }


def test_the_user_example_maps_users() -> None:
    route = routes_of(EXAMPLES / "user_profile.mapping.yaml")["users"]
    value = {"user_id": "u-1", "membership": "GOLD", "age": None, "interests": []}
    outcome = EntryMapper(route).map(record("users", partition=3), value)
    assert isinstance(outcome, MappedEvent)
    assert outcome.session.operation == "PutUsers" and outcome.session.session_id == "users/3"
    assert outcome.event == {"userId": "u-1", "properties": '{"membership":"GOLD"}'}


def test_an_empty_id_is_a_validation_failure_that_names_the_field_not_the_value() -> None:
    route = routes_of(EXAMPLES / "item_catalog.mapping.yaml")["items"]
    outcome = EntryMapper(route).map(record("items"), item(sku="", title="secret title"))
    assert isinstance(outcome, Failure)
    assert outcome.stage is Stage.VALIDATE
    assert "itemId" in outcome.reason and "secret title" not in outcome.reason


def test_actions_and_action_interactions(tmp_path: Path) -> None:
    path = mapping_file(
        tmp_path,
        """  actions:
    operation: PutActions
    datasetArn: arn:aws:personalize:eu-west-1:123456789012:dataset/shop/ACTIONS
    schema: action.avsc
    fields: {actionId: action_id, properties: {fields: {kind: kind, tags: tags}}}
  taken:
    operation: PutActionInteractions
    trackingId: action-tracker
    schema: action.avsc
    fields:
      actionId: action_id
      userId: user
      sessionId: session
      eventType: {path: kind, rename: {took: Taken}}
      timestamp: {path: at, unit: logical}
""",
    )
    routes = routes_of(path)
    value = {
        "action_id": "a-1",
        "user": "u-1",
        "session": "s-1",
        "kind": "took",
        "at": AT,
        "value": None,
        "tags": ["x"],
    }
    action = EntryMapper(routes["actions"]).map(record("actions"), value)
    assert isinstance(action, MappedEvent)
    assert action.event == {"actionId": "a-1", "properties": '{"kind":"took","tags":"x"}'}
    taken = EntryMapper(routes["taken"]).map(record("taken", offset=3), value)
    assert isinstance(taken, MappedEvent)
    assert taken.session == SessionKey("action-tracker", None, "taken/0", "PutActionInteractions")
    entry = taken.event
    assert entry["actionId"] == "a-1" and entry["eventType"] == "Taken"
    assert entry["userId"] == "u-1" and entry["sessionId"] == "s-1"
    assert entry["timestamp"] == AT.timestamp()
    assert "sentAt" not in entry and "itemId" not in entry
    again = EntryMapper(routes["taken"]).map(record("taken", offset=3), value)
    assert isinstance(again, MappedEvent) and again.event["eventId"] == entry["eventId"]
    missing = EntryMapper(routes["taken"]).map(record("taken"), value | {"kind": None})
    assert isinstance(missing, Failure) and "eventType" in missing.reason


def test_every_problem_of_the_topics_is_named_at_once(tmp_path: Path) -> None:
    path = mapping_file(
        tmp_path,
        """  items:
    operation: PutItems
    datasetArn: not-an-arn
    schema: action.avsc
    fields: {itemID: action_id}
  users:
    operation: PutUsers
    schema: missing.avsc
    fields: {userId: user_id}
  taken:
    operation: PutActionInteractions
    trackingId: t
    datasetArn: arn:aws:personalize:eu-west-1:1:dataset/x/ITEMS
    schema: action.avsc
    fields:
      actionId: nope
      sessionId: session
      eventType: kind
      timestamp: {path: at, unit: seconds}
  clicks:
    operation: PutEvents
    fields: {sessionId: s}
""",
    )
    with pytest.raises(MappingError) as raised:
        routes_of(path)
    problems = "\n".join(raised.value.problems)
    assert "topics.items.datasetArn: datasetArn: must match the pattern" in problems
    assert "topics.users.datasetArn: is required for PutUsers" in problems
    assert "topics.users.schema: " in problems and "missing.avsc" in problems
    assert "topics.taken.datasetArn: PutActionInteractions takes trackingId" in problems
    assert "topics.clicks.fields: PutEvents topics use the top-level fields" in problems
    assert "topics.items.fields: unknown key 'itemID' (did you mean 'itemId'?)" in problems
    assert "topics.taken.fields.actionId.path: 'nope' is not a field" in problems
    assert "topics.taken.fields.timestamp" in problems  # a timestamp-millis is not seconds


def test_a_list_property_must_be_a_list_of_values(tmp_path: Path) -> None:
    nested = {
        "type": "record",
        "name": "Nested",
        "fields": [
            {"name": "id", "type": "string"},
            {
                "name": "variants",
                "type": {
                    "type": "array",
                    "items": {
                        "type": "record",
                        "name": "V",
                        "fields": [{"name": "s", "type": "string"}],
                    },
                },
            },
        ],
    }
    (tmp_path / "nested.avsc").write_text(json.dumps(nested))
    path = mapping_file(
        tmp_path,
        """  items:
    operation: PutItems
    datasetArn: arn:aws:personalize:eu-west-1:123456789012:dataset/shop/ITEMS
    schema: nested.avsc
    fields: {itemId: id, properties: {fields: [variants]}}
""",
    )
    with pytest.raises(MappingError) as raised:
        routes_of(path)
    assert raised.value.problems == [
        "MAPPING_FILE topics.items.fields.properties.fields[0]: "
        "'variants' is an array of record, not of values"
    ]
