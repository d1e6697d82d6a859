"""Every fatal path ends the same way: exit 3, a last line that says what to fix, no traceback,
nothing committed at or past a record that did not finish, and after the fix a restart delivers
everything. `consumer run` as a real process against the broker and the local endpoint.

(Kafka refusing the client, the fifth path, is in test_security.py: it needs the secured broker.)
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastavro
import pytest
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource
from confluent_kafka.cimpl import NewTopic

from consumer import DEFAULT_SCHEMA_FILE
from consumer.mapping import derived_event_id
from consumer.testing.emulator import EmulatorServer
from consumer.testing.samples import InteractionEncoder, interactions, produce
from tests.integration.processes import ConsumerProcess, Consumers, Deployment
from tests.integration.support import accepted_at_least, arrived, read_all, write_sessions
from tests.registry_server import RegistryServer

#: SHUTDOWN_TIMEOUT_S (default 30) plus a margin for the interpreter, the group leave, a commit.
STOPS_WITHIN_S = 45


def assert_stopped_cleanly(process: ConsumerProcess, cause: str) -> str:
    """Exit 3, the last line of stderr names `cause`, and no traceback anywhere; that line."""
    code = process.exit_code(STOPS_WITHIN_S)
    stderr, stdout = process.stderr(), process.stdout()
    assert code == 3, f"exit code {code}; stderr: {stderr[-2000:]}"
    assert "Traceback" not in stderr + stdout, stderr[-4000:]
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("personalize-consumer: stopped: "), last
    assert cause in last, last
    return last


@pytest.mark.parametrize(
    ("fault", "cause", "hint"),
    [
        ({"access_denied": True}, "AccessDeniedException", "grant personalize:PutEvents"),
        ({"access_keys": ["rotated"]}, "UnrecognizedClientException", "credentials"),
        ({"tracking_ids": ["another"]}, "ResourceNotFoundException", "PERSONALIZE_TRACKING_ID"),
    ],
    ids=["access-denied", "bad-credentials", "unknown-tracker"],
)
def test_aws_refusing_mid_run_stops_cleanly_and_a_restart_after_the_fix_delivers_the_rest(
    fault: dict[str, Any],
    cause: str,
    hint: str,
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    emulator: EmulatorServer,
    events_file: Path,
    consumers: Consumers,
) -> None:
    topic, dead_letter = new_topic(partitions=4), new_topic()
    stream = write_sessions(kafka_bootstrap, topic, 4, 4_000, sessions=100)
    app = Deployment(kafka_bootstrap, topic, 4, dead_letter, emulator.url)
    consumer = consumers.start(app.env(max_calls_per_second=50, commit_interval_ms=100))
    consumer.wait_until(accepted_at_least(emulator, 500), 120, "some events accepted")

    emulator.set_faults(**fault)  # access revoked, keys rotated, the tracker deleted

    assert hint in assert_stopped_cleanly(consumer, cause)
    arrived_ids = {e["eventId"] for e in arrived(emulator, events_file)}
    assert len(arrived_ids) < len(stream.records)
    positions = app.committed()
    assert sum(max(o, 0) for o in positions.values()) > 0, "what was sent was not committed"
    assert stream.ids_below(positions) <= arrived_ids  # nothing committed that did not arrive

    emulator.set_faults(**{name: [] if name != "access_denied" else False for name in fault})
    consumers.run_until_caught_up(app.env(), within_s=120)
    assert {e["eventId"] for e in arrived(emulator, events_file)} == stream.expected_ids()
    assert app.dead_letters() == []


def test_a_dead_letter_too_large_for_its_topic_stops_cleanly_naming_the_limit_to_raise(
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    emulator: EmulatorServer,
    events_file: Path,
    consumers: Consumers,
) -> None:
    topic = new_topic(partitions=1)
    dead_letter = f"{topic}.dead-letter"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    small = NewTopic(dead_letter, 1, 1, config={"max.message.bytes": "2000"})
    admin.create_topics([small])[dead_letter].result(30)
    encoder = InteractionEncoder()
    values = [encoder.encode(v) for v in interactions(300, sessions=30)]
    big_at = 150
    values[big_at] = b"\x02\xff" + b"not avro " * 600  # 5 kB: dead-lettered, but too large
    produce(kafka_bootstrap, topic, values, partitions=1)
    app = Deployment(kafka_bootstrap, topic, 1, dead_letter, emulator.url)

    consumer = consumers.start(app.env(commit_interval_ms=100, consume_batch_size=50))

    last = assert_stopped_cleanly(consumer, "max.message.bytes")
    assert f"{topic}[0] offset {big_at}" in last and "KAFKA_MESSAGE_MAX_BYTES" in last
    assert 0 <= app.committed()[0] <= big_at  # never past the record it could not park

    fix = ConfigResource(
        ConfigResource.Type.TOPIC,
        dead_letter,
        incremental_configs=[
            ConfigEntry("max.message.bytes", "100000", incremental_operation=AlterConfigOpType.SET)
        ],
    )
    admin.incremental_alter_configs([fix])[fix].result(30)
    consumers.run_until_caught_up(app.env(), within_s=120)
    ids = {e["eventId"] for e in arrived(emulator, events_file)}
    expected = {app_id(topic, offset) for offset in range(300) if offset != big_at}
    assert ids == expected
    assert [m.value() for m in read_all(kafka_bootstrap, dead_letter)] == [values[big_at]]


def test_the_schema_registry_refusing_our_credentials_stops_cleanly(
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    emulator: EmulatorServer,
    events_file: Path,
    consumers: Consumers,
) -> None:
    topic, dead_letter = new_topic(partitions=1), new_topic()
    schema: dict[str, Any] = json.loads(DEFAULT_SCHEMA_FILE.read_text())
    newer = schema | {"fields": [*schema["fields"], {"name": "x", "type": "int", "default": 0}]}
    records = list(interactions(200, sessions=20))
    with RegistryServer(credentials=("svc", "first")) as registry:
        v1 = registry.register(f"{topic}-value", schema)
        v2 = registry.register(f"{topic}-value", newer)
        produce(kafka_bootstrap, topic, [framed(v1, schema, r) for r in records[:100]], 1)
        app = Deployment(kafka_bootstrap, topic, 1, dead_letter, emulator.url)
        env = app.env(schema_registry_url=registry.url, commit_interval_ms=100)
        consumer = consumers.start(env | {"SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO": "svc:first"})
        consumer.wait_until(lambda: app.committed()[0] == 100, 60, "the v1 records committed")

        registry.set_credentials(("svc", "second"))  # rotated, and the consumer not told
        produce(kafka_bootstrap, topic, [framed(v2, newer, r) for r in records[100:]], 1)

        assert_stopped_cleanly(consumer, "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO")
        assert app.committed()[0] == 100  # the first v2 record never finished
        right = env | {"SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO": "svc:second"}
        consumers.run_until_caught_up(right, within_s=120)
    ids = {e["eventId"] for e in arrived(emulator, events_file)}
    assert ids == {app_id(topic, offset) for offset in range(200)}
    assert app.dead_letters() == []


def app_id(topic: str, offset: int) -> str:
    """The eventId of the record at `offset` of partition 0, as the consumer derives it."""
    return derived_event_id(topic, 0, offset)


def framed(schema_id: int, schema: dict[str, Any], record: dict[str, Any]) -> bytes:
    """Confluent wire format: magic byte, schema id, the Avro body."""
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(schema), record)
    return b"\0" + schema_id.to_bytes(4, "big") + buffer.getvalue()
