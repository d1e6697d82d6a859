"""Kafka security against a broker configured for it (``secure_kafka``).

SCRAM-SHA-512 and PLAIN over SASL_SSL, and mutual TLS: each connects with exactly what the
consumer builds from its ``KAFKA_*`` variables (`load_settings`, then `common_config` /
`consumer_config`), and `consumer run` itself delivers and commits through the secured listener.
Wrong credentials must stop it with exit 3 naming the problem, not leave it retrying silently.
Amazon MSK IAM can't be reached from here, so its token callback is checked locally: the signer
only signs, it never connects.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from consumer.config import Settings, load_settings
from consumer.kafkaclient import common_config, consumer_config
from consumer.testing.emulator import EmulatorServer
from consumer.testing.localkafka import MODES, Mode, SecureListeners
from consumer.testing.samples import InteractionEncoder, interactions
from tests.integration.processes import Consumers, Deployment
from tests.integration.support import Clickstream, arrived, wait_for

BAD_RECORD = b"\x02\xff\xfe not avro at all"  # dead-lettered at decode
PARTITIONS = 2


@pytest.fixture
def deployment(mode: Mode, kafka_security: SecureListeners, emulator: EmulatorServer) -> Deployment:
    """Fresh topics and group on the secured listener that ``mode`` (the test's parameter) uses."""
    suffix = uuid.uuid4().hex[:8]
    return Deployment(
        bootstrap=kafka_security.env(mode)["KAFKA_BOOTSTRAP_SERVERS"],
        topic=f"secure-{suffix}",
        partitions=PARTITIONS,
        dead_letter=f"secure-{suffix}.dead-letter",
        endpoint=emulator.url,
    )


def process_env(deployment: Deployment, security: Mapping[str, str]) -> dict[str, str]:
    """What `consumer run` gets: the deployment's settings plus the security variables."""
    return deployment.env() | dict(security)


def settings_for(deployment: Deployment, security: Mapping[str, str]) -> Settings:
    """The consumer's own settings for this deployment, as `consumer run` would load them."""
    return load_settings(process_env(deployment, security))


def create_topics(config: dict[str, Any], partitions: Mapping[str, int]) -> None:
    """Create topics with the given client config, and wait until every partition has a leader
    (CreateTopics returns before the broker has loaded them)."""
    admin = AdminClient(config)
    specs = [
        NewTopic(name, num_partitions=n, replication_factor=1) for name, n in partitions.items()
    ]
    for future in admin.create_topics(specs, operation_timeout=30, request_timeout=60).values():
        future.result(60)

    def ready(name: str, count: int) -> bool:
        meta = admin.list_topics(topic=name, timeout=10).topics.get(name)
        return (
            meta is not None
            and meta.error is None
            and len(meta.partitions) == count
            and all(p.leader >= 0 and p.error is None for p in meta.partitions.values())
        )

    for name, count in partitions.items():
        wait_for(partial(ready, name, count), 30, f"every partition of {name} to have a leader")


def produce(config: dict[str, Any], topic: str, values: list[bytes], partitions: int) -> None:
    """Round-robin like `write_clickstream` (record i at partition i % n, offset i // n), with the
    dead-letter producer's guarantees (acks=all, idempotent), and wait for every ack."""
    producer = Producer({**config, "acks": "all", "enable.idempotence": True, "linger.ms": 20})
    failures: list[str] = []

    def report(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            failures.append(str(err))

    for i, value in enumerate(values):
        producer.produce(topic, value=value, partition=i % partitions, on_delivery=report)
        producer.poll(0)
    assert producer.flush(60) == 0 and not failures, failures[:3]


def committed_and_end(settings: Settings) -> tuple[dict[int, int], dict[int, int]]:
    """The group's committed offsets and the topic's end offsets, read through the secured
    listener with the consumer's own configuration."""
    topic = settings.source_topics[0]
    reader = Consumer(consumer_config(settings))
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        committed = {tp.partition: tp.offset for tp in reader.committed(tps, timeout=10)}
        ends = {tp.partition: reader.get_watermark_offsets(tp, timeout=10)[1] for tp in tps}
        return committed, ends
    finally:
        reader.close()


def dead_letters(settings: Settings) -> list[bytes | None]:
    """Values on the dead-letter topic (one partition), read with the consumer's configuration."""
    config = consumer_config(settings) | {"group.id": f"reader-{uuid.uuid4().hex[:8]}"}
    reader = Consumer(config)
    reader.assign([TopicPartition(settings.dead_letter_topic, 0, 0)])
    values: list[bytes | None] = []
    deadline = time.monotonic() + 30
    try:
        while not values and time.monotonic() < deadline:
            message = reader.poll(0.5)
            if message is not None and message.error() is None:
                values.append(message.value())
    finally:
        reader.close()
    return values


@pytest.mark.parametrize("mode", MODES)
def test_consumer_delivers_and_commits_over_the_secured_listener(
    mode: Mode,
    kafka_security: SecureListeners,
    deployment: Deployment,
    emulator: EmulatorServer,
    events_file: Path,
    consumers: Consumers,
) -> None:
    """Topics created, records written, consumed, dead-lettered and committed, all with the
    configuration the consumer builds from its variables; nothing goes over PLAINTEXT."""
    security = kafka_security.env(mode)
    settings = settings_for(deployment, security)
    config = common_config(settings)
    create_topics(config, {deployment.topic: PARTITIONS, deployment.dead_letter: 1})
    encoder = InteractionEncoder()
    values = list(interactions(120, sessions=20))
    raw = [encoder.encode(v) for v in values]
    raw[7] = BAD_RECORD
    produce(config, deployment.topic, raw, PARTITIONS)

    consumers.run_until_caught_up(process_env(deployment, security), within_s=120)

    sent = {event["eventId"] for event in arrived(emulator, events_file)}
    assert sent == Clickstream(deployment.topic, PARTITIONS, values).expected_ids(skip={7})
    committed, ends = committed_and_end(settings)
    assert committed == ends == {0: 60, 1: 60}
    assert dead_letters(settings) == [BAD_RECORD]


WRONG = [
    pytest.param("scram", {"KAFKA_SASL_PASSWORD": "wrong-password"}, "authentication", id="scram"),
    pytest.param("plain", {"KAFKA_SASL_PASSWORD": "wrong-password"}, "authentication", id="plain"),
    pytest.param(
        "mtls",
        {"KAFKA_SSL_CERTIFICATE_LOCATION": None, "KAFKA_SSL_KEY_LOCATION": None},
        "certificate",
        id="mtls-without-client-certificate",
    ),
    pytest.param("scram", {"KAFKA_SSL_CA_LOCATION": None}, "certificate", id="untrusted-broker"),
]


@pytest.mark.parametrize(("mode", "change", "named"), WRONG)
def test_wrong_credentials_stop_the_consumer_naming_the_problem(
    mode: Mode,
    change: Mapping[str, str | None],
    named: str,
    kafka_security: SecureListeners,
    deployment: Deployment,
    emulator: EmulatorServer,
    events_file: Path,
    consumers: Consumers,
) -> None:
    """A wrong password, a missing client certificate or a broker certificate the system CAs
    don't trust is an operator's fix: exit 3 soon, with one last line saying what failed and no
    traceback, instead of retrying forever (librdkafka treats all of them as transient and keeps
    reconnecting). Nothing is committed; with the fix, a restart delivers everything."""
    security = kafka_security.env(mode)
    settings = settings_for(deployment, security)
    create_topics(
        common_config(settings), {deployment.topic: PARTITIONS, deployment.dead_letter: 1}
    )
    values = list(interactions(40, sessions=10))
    encoder = InteractionEncoder()
    produce(common_config(settings), deployment.topic, [encoder.encode(v) for v in values], 2)
    merged: dict[str, str | None] = {**security, **change}
    wrong = {k: v for k, v in merged.items() if v is not None}
    process = consumers.start(process_env(deployment, wrong), until_caught_up=True)

    code = process.exit_code(within_s=90)

    stderr = process.stderr()
    assert code == 3, f"exit code {code}; stderr: {stderr[-2000:]}"
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("personalize-consumer: stopped: Kafka refused us"), last
    assert named in last.lower(), f"the last line does not name {named!r}: {last}"
    assert "Traceback" not in stderr + process.stdout()
    assert all(offset < 0 for offset in committed_and_end(settings)[0].values())

    consumers.run_until_caught_up(process_env(deployment, security), within_s=120)
    sent = {event["eventId"] for event in arrived(emulator, events_file)}
    assert sent == Clickstream(deployment.topic, PARTITIONS, values).expected_ids()


def test_msk_iam_token_is_signed_locally_from_the_default_credential_chain(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The `oauth_cb` the consumer hands librdkafka for KAFKA_MSK_IAM returns a presigned
    kafka-cluster:Connect URL for the cluster's region, signed with the credentials of the
    default chain, and an expiry in the future (librdkafka refreshes before it)."""
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-real-secret")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")  # no profile can win over the env
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # and nothing asks the network
    settings = load_settings(
        {
            "KAFKA_BOOTSTRAP_SERVERS": "b-1.msk.example:9098",
            "SOURCE_TOPICS": "t",
            "DEAD_LETTER_TOPIC": "d",
            "PERSONALIZE_TRACKING_ID": "x",
            "AWS_REGION": "eu-west-1",
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_MSK_IAM": "true",
            "KAFKA_MSK_IAM_REGION": "eu-central-1",
        }
    )
    oauth_cb = common_config(settings)["oauth_cb"]
    before = time.time()

    token, expiry = oauth_cb("")

    assert isinstance(token, str) and token
    assert before < expiry <= time.time() + 900
    url = urlparse(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode())
    assert (url.scheme, url.netloc) == ("https", "kafka.eu-central-1.amazonaws.com")
    query = parse_qs(url.query)
    assert query["Action"] == ["kafka-cluster:Connect"]
    assert query["X-Amz-Credential"][0].startswith("AKIDEXAMPLE/")
    assert "/eu-central-1/kafka-cluster/" in query["X-Amz-Credential"][0]
    assert query["X-Amz-Signature"][0]
