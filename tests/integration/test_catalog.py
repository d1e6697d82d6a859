"""PutItems, PutUsers, PutActions and PutActionInteractions end to end: records on a real topic,
`consumer run` as a real process with a mapping file that routes the topic to its operation, and
what the local endpoint accepted, field by field. Per operation: every entry arrives once with
its values; poison records are dead-lettered; an outage holds commits; an id updated twice in one
call is sent once with its last value; a tombstone is skipped and committed. Then a mixed run of
interactions and a catalog in one group, SIGKILLed, loses nothing."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fastavro
import pytest
from confluent_kafka import Producer

from consumer import SCHEMAS_DIR
from consumer.deadletter.headers import H_OFFSET, H_STAGE
from consumer.testing.emulator import EmulatorServer
from tests.integration.processes import Consumers, Deployment
from tests.integration.support import accepted_events, write_sessions

EXAMPLES = SCHEMAS_DIR / "examples"
ARN = "arn:aws:personalize:us-east-1:123456789012:dataset/shop/{}"
AT = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
THING = {  # one schema for every operation's records in these tests
    "type": "record",
    "name": "Thing",
    "fields": [
        {"name": "id", "type": "string"},
        {"name": "user", "type": ["null", "string"], "default": None},
        {"name": "session", "type": "string", "default": "s-1"},
        {"name": "kind", "type": "string", "default": "Taken"},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "colour", "type": ["null", "string"], "default": None},
        {"name": "tags", "type": {"type": "array", "items": "string"}, "default": []},
    ],
}
OPERATIONS = {  # operation: (its id in entries, the topic entry's target, its fields)
    "PutItems": ("itemId", {"datasetArn": ARN.format("ITEMS")}, {}),
    "PutUsers": ("userId", {"datasetArn": ARN.format("USERS")}, {}),
    "PutActions": ("actionId", {"datasetArn": ARN.format("ACTIONS")}, {}),
    "PutActionInteractions": (
        "actionId",
        {"trackingId": "action-tracker"},
        {"userId": "user", "sessionId": "session", "eventType": "kind",
         "timestamp": {"path": "at", "unit": "logical"}},
    ),
}  # fmt: skip
RUN_WITHIN_S = 120


def mapping(tmp_path: Path, topic: str, operation: str, id_path: str = "id") -> Path:
    """The default PutEvents mapping, plus `topic` routed to `operation`."""
    id_name, target, more = OPERATIONS[operation]
    (tmp_path / "thing.avsc").write_text(json.dumps(THING))
    fields: dict[str, Any] = {id_name: id_path, **more}
    catalog = operation != "PutActionInteractions"  # interactions' properties take no lists
    properties = {"colour": "colour", "tags": "tags"} if catalog else {"colour": "colour"}
    fields["properties"] = {"fields": properties}
    entry = {"operation": operation, "schema": "thing.avsc", "fields": fields, **target}
    path = tmp_path / "mapping.yaml"
    default = (SCHEMAS_DIR / "interaction.mapping.yaml").read_text()
    path.write_text(default + "topics:\n  " + json.dumps({topic: entry})[1:-1] + "\n")
    return path


def thing(ident: str, colour: str | None = "red", **changes: Any) -> bytes:
    value = {"id": ident, "user": "u-1", "at": AT, "colour": colour, "tags": ["a", "b"]}
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(THING), value | changes)
    return out.getvalue()


def write(bootstrap: str, topic: str, records: Sequence[tuple[str, bytes | None]]) -> None:
    """(key, value) records in order on partition 0; a None value is a tombstone."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for key, value in records:
        producer.produce(topic, value=value, key=key.encode(), partition=0)
    assert producer.flush(30) == 0


def entries(events_file: Path, emulator: EmulatorServer, operation: str) -> list[dict[str, Any]]:
    emulator.flush()
    return [e for e in accepted_events(events_file) if e.get("operation") == operation]


def catalog(records: int = 12) -> list[tuple[str, bytes | None]]:
    """Valid entries, one id updated twice in a row, a tombstone, and two poison records."""
    written: list[tuple[str, bytes | None]] = [(f"id-{i}", thing(f"id-{i}")) for i in range(3)]
    written += [("id-1", thing("id-1", colour="blue"))]  # offset 3 supersedes offset 1
    written += [("id-2", None)]  # offset 4: a tombstone
    written += [("bad", b"\x00not avro at all")]  # offset 5: decode
    written += [("empty", thing(""))]  # offset 6: validate (an empty id)
    written += [(f"id-{i}", thing(f"id-{i}", colour=None)) for i in range(7, records)]
    return written


@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_each_operation_end_to_end(
    operation: str,
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    emulator: EmulatorServer,
    events_file: Path,
    consumers: Consumers,
    tmp_path: Path,
) -> None:
    topic, dead_letter = new_topic(), new_topic()
    write(kafka_bootstrap, topic, catalog())
    app = Deployment(kafka_bootstrap, topic, 1, dead_letter, emulator.url)
    env = app.env(mapping_file=mapping(tmp_path, topic, operation), batch_linger_ms=1000)

    process = consumers.run_until_caught_up(env, within_s=RUN_WITHIN_S)

    id_name, target, _more = OPERATIONS[operation]
    arrived = entries(events_file, emulator, operation)
    ids = sorted(e[id_name] for e in arrived)
    expected = ["id-0", "id-1", "id-2", *(f"id-{i}" for i in range(7, 12))]
    if operation == "PutActionInteractions":  # interactions: each counts, none supersedes
        assert ids == sorted([*expected, "id-1"])
    else:
        assert ids == sorted(expected)  # exactly once each
    by_id = {e[id_name]: e for e in arrived}  # the last to arrive of each id
    tags = {"tags": "a|b"} if operation != "PutActionInteractions" else {}
    assert json.loads(by_id["id-1"]["properties"]) == {"colour": "blue", **tags}  # the last
    assert json.loads(by_id["id-7"].get("properties", "{}")) == tags
    for entry in arrived:
        assert entry[next(iter(target))] == next(iter(target.values()))
    if operation == "PutActionInteractions":
        assert by_id["id-0"]["eventType"] == "Taken" and by_id["id-0"]["userId"] == "u-1"
        assert by_id["id-0"]["timestamp"] == pytest.approx(AT.timestamp())
        assert len({e["eventId"] for e in arrived}) == len(arrived)
    headers = [dict(m.headers() or []) for m in app.dead_letters()]
    dead = {int(h[H_OFFSET] or b"-1"): h for h in headers}
    assert sorted(dead) == [5, 6]
    assert dead[5][H_STAGE] == b"decode" and dead[6][H_STAGE] == b"validate"
    assert app.committed() == app.end_offsets() == {0: 12}
    summary = process.stderr() + process.stdout()
    assert "tombstone=1" in summary
    assert ("superseded=1" in summary) == (operation != "PutActionInteractions")


@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_an_outage_holds_commits_then_everything_arrives(
    operation: str,
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    emulator: EmulatorServer,
    events_file: Path,
    consumers: Consumers,
    tmp_path: Path,
) -> None:
    topic, dead_letter = new_topic(), new_topic()
    write(kafka_bootstrap, topic, [(f"id-{i}", thing(f"id-{i}")) for i in range(25)])
    app = Deployment(kafka_bootstrap, topic, 1, dead_letter, emulator.url)
    env = app.env(mapping_file=mapping(tmp_path, topic, operation), commit_interval_ms=100)
    emulator.set_faults(error_5xx_ratio=1.0)

    process = consumers.start(env)
    process.wait_until(
        lambda: emulator.stats()["errors_5xx"] >= 3, RUN_WITHIN_S, "calls answered with 5xx"
    )
    assert app.committed().get(0, -1) < 0  # nothing done, nothing committed
    emulator.set_faults(error_5xx_ratio=0.0)
    process.wait_until(app.caught_up, RUN_WITHIN_S, "everything committed after the outage")

    id_name = OPERATIONS[operation][0]
    arrived = {e[id_name] for e in entries(events_file, emulator, operation)}
    assert arrived == {f"id-{i}" for i in range(25)}
    assert app.dead_letters() == []


def test_interactions_and_a_catalog_in_one_group_survive_a_sigkill(
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    emulator: EmulatorServer,
    events_file: Path,
    consumers: Consumers,
    tmp_path: Path,
) -> None:
    clicks, items, dead_letter = new_topic(partitions=3), new_topic(), new_topic()
    stream = write_sessions(kafka_bootstrap, clicks, 3, count=3000, sessions=60)
    updates = [(f"id-{i % 40}", thing(f"id-{i % 40}", colour=f"v{i}")) for i in range(400)]
    write(kafka_bootstrap, items, updates)
    last = {key: f"v{i}" for i, (key, _value) in enumerate(updates)}
    interactions = Deployment(kafka_bootstrap, clicks, 3, dead_letter, emulator.url)
    catalog_app = Deployment(kafka_bootstrap, items, 1, dead_letter, emulator.url,
                             group=interactions.group)  # fmt: skip
    env = interactions.env(
        mapping_file=mapping(tmp_path, items, "PutItems"),
        source_topics=f"{clicks},{items}",
        put_items_calls_per_second=20,  # slow enough to kill it half way
    )

    first = consumers.start(env)
    first.wait_until(
        lambda: (
            emulator.stats()["accepted_items"] >= 50 and emulator.stats()["accepted_events"] >= 500
        ),
        RUN_WITHIN_S,
        "items and events arriving",
    )
    first.kill()
    consumers.run_until_caught_up(env, within_s=RUN_WITHIN_S)

    emulator.flush()
    everything = accepted_events(events_file)
    events = {e["eventId"] for e in everything if "operation" not in e}
    assert events == stream.expected_ids()
    final: dict[str, str] = {}
    for entry in everything:
        if entry.get("operation") == "PutItems":
            final[entry["itemId"]] = json.loads(entry["properties"])["colour"]
    assert final == last  # every item's last value arrived last, whatever was replayed
    assert interactions.caught_up() and catalog_app.caught_up()
    assert interactions.dead_letters() == []


def test_check_and_replay_on_a_catalog_topic(
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    emulator: EmulatorServer,
    events_file: Path,
    consumers: Consumers,
    tmp_path: Path,
) -> None:
    topic, dead_letter = new_topic(), new_topic()
    records = [(f"id-{i}", thing(f"id-{i}", user=None if i % 2 else "u-1")) for i in range(8)]
    write(kafka_bootstrap, topic, [*records, ("id-0", None)])
    app = Deployment(kafka_bootstrap, topic, 1, dead_letter, emulator.url)
    wrong = app.env(mapping_file=mapping(tmp_path, topic, "PutItems", id_path="user"))

    checked = subprocess.run(
        [sys.executable, "-m", "consumer", "check", "--topic", topic, "--records", "20"],
        env=wrong,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 0, checked.stderr[-2000:]
    assert "would send: 4" in checked.stdout and "dead-letter (map): 4" in checked.stdout
    assert "skipped (tombstone): 1" in checked.stdout
    assert "itemId: no value at user" in checked.stdout
    assert '"operation": "PutItems"' in checked.stdout and '"itemId": "***"' in checked.stdout
    assert emulator.stats()["requests"] == 0

    consumers.run_until_caught_up(wrong, within_s=RUN_WITHIN_S)
    assert len(app.dead_letters()) == 4
    fixed = wrong | {"MAPPING_FILE": str(mapping(tmp_path, topic, "PutItems", id_path="id"))}
    replay = subprocess.run(
        [sys.executable, "-m", "consumer", "replay", "--until-caught-up"],
        env=fixed,
        capture_output=True,
        text=True,
        timeout=RUN_WITHIN_S,
    )
    assert replay.returncode == 0, replay.stderr[-2000:]
    arrived = sorted(e["itemId"] for e in entries(events_file, emulator, "PutItems"))
    # At first the four that mapped all took "u-1" as their id: the last superseded the others.
    # The replay sent the four dead-lettered ones with the fixed mapping.
    assert arrived == ["id-1", "id-3", "id-5", "id-7", "u-1"]


@pytest.mark.parametrize(
    ("example", "operation", "id_name"),
    [("item_catalog", "PutItems", "itemId"), ("user_profile", "PutUsers", "userId")],
)
def test_the_catalog_examples_end_to_end(
    example: str,
    operation: str,
    id_name: str,
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    emulator: EmulatorServer,
    events_file: Path,
    consumers: Consumers,
) -> None:
    """schemas/examples/<example>.* as shipped: interactions and the catalog side by side."""
    clicks, catalog_topic, dead_letter = new_topic(), new_topic(), new_topic()
    stream = write_sessions(kafka_bootstrap, clicks, 1, count=50, sessions=5)
    schema = fastavro.parse_schema(json.loads((EXAMPLES / f"{example}.avsc").read_text()))
    values = {
        "item_catalog": [
            {"sku": "sku-1", "title": "Shoe", "price": 9.5, "in_stock": True, "created_at": 1,
             "category": {"level1": "shoes", "level2": None}, "genres": ["sport", "casual"]},
            {"sku": "sku-2", "title": None, "price": None, "in_stock": False, "created_at": 2,
             "category": {"level1": "bags", "level2": "totes"}, "genres": []},
        ],
        "user_profile": [
            {"user_id": "u-1", "membership": "GOLD", "age": 41, "interests": ["tea", "hiking"]},
            {"user_id": "u-2", "membership": "FREE", "age": None, "interests": []},
        ],
    }[example]  # fmt: skip
    records: list[tuple[str, bytes | None]] = []
    for value in values:
        out = io.BytesIO()
        fastavro.schemaless_writer(out, schema, value)
        records.append((str(value[next(iter(value))]), out.getvalue()))
    write(kafka_bootstrap, catalog_topic, records)
    variable = "ITEMS" if operation == "PutItems" else "USERS"
    arn = ARN.format(variable)
    app = Deployment(kafka_bootstrap, clicks, 1, dead_letter, emulator.url)
    env = app.env(
        mapping_file=EXAMPLES / f"{example}.mapping.yaml",
        source_topics=f"{clicks},{catalog_topic}",
        **{f"{variable}_TOPIC": catalog_topic, f"{variable}_DATASET_ARN": arn},
    )

    consumers.run_until_caught_up(env, within_s=RUN_WITHIN_S)

    arrived = entries(events_file, emulator, operation)
    by_id = {e[id_name]: json.loads(e["properties"]) for e in arrived}
    assert all(e["datasetArn"] == arn for e in arrived)
    if operation == "PutItems":
        assert by_id == {
            "sku-1": {"title": "Shoe", "price": 9.5, "categoryL1": "shoes",
                      "genres": "sport|casual", "inStock": True, "creationTimestamp": 1},
            "sku-2": {"categoryL1": "bags", "categoryL2": "totes", "inStock": False,
                      "creationTimestamp": 2},
        }  # fmt: skip
    else:
        assert by_id == {
            "u-1": {"membership": "GOLD", "age": 41, "interests": "tea|hiking"},
            "u-2": {"membership": "FREE"},
        }
    events = {e["eventId"] for e in accepted_events(events_file) if "operation" not in e}
    assert events == stream.expected_ids()
    assert app.dead_letters() == []
