"""Shared fixtures: one real Kafka broker per session, started only when a test asks for it.

The broker is, in this order: ``KAFKA_BOOTSTRAP_SERVERS``; an ``apache/kafka`` container when a
Docker engine answers; a local broker from the official jars (``consumer.testing.localkafka``).
With none of them the tests skip saying how to get one, or fail when ``REQUIRE_KAFKA=1`` (CI).
"""

from __future__ import annotations

import os
import re
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, Protocol

import pytest

if TYPE_CHECKING:
    from confluent_kafka.admin import AdminClient

    from consumer.testing.localkafka import LocalKafka, SecureListeners

KAFKA_VERSION = "4.1.1"
HOW_TO_GET_A_BROKER = (
    "set KAFKA_BOOTSTRAP_SERVERS=host:port, start a Docker engine (testcontainers runs "
    "apache/kafka), or install Java 17+ and Maven 3 (the official Kafka jars are then fetched "
    "from Maven Central and run locally)"
)


def _unavailable(why: str) -> NoReturn:
    """Skip, so a laptop without Kafka still runs the unit tests; fail in CI, where it's a bug."""
    why = why.rstrip(".")
    message = f"no Kafka broker for integration tests: {why}. To get one: {HOW_TO_GET_A_BROKER}"
    if os.environ.get("REQUIRE_KAFKA") == "1":
        pytest.fail(f"{message} (REQUIRE_KAFKA=1)", pytrace=False)
    pytest.skip(message)


@dataclass
class KafkaBroker:
    """The session's broker, however it was obtained; ``restart`` only for ones we started."""

    bootstrap_servers: str
    kind: str  # "external", "docker" or "local"
    restarter: Callable[[bool], None] | None = None

    def restart(self, graceful: bool = True) -> None:
        """Bounce the broker on the same address; ``graceful=False`` kills it like a crash."""
        if self.restarter is None:
            pytest.skip(
                f"the {self.kind} broker at {self.bootstrap_servers} was not started by the "
                "tests, so they cannot restart it; unset KAFKA_BOOTSTRAP_SERVERS to run this"
            )
        self.restarter(graceful)


def _docker_answers() -> bool:
    """Cheap probe: no socket means no Docker, without waiting on a client timeout."""
    if not os.environ.get("DOCKER_HOST") and not Path("/var/run/docker.sock").exists():
        return False
    try:
        import docker

        client = docker.from_env(timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _docker_kafka() -> Iterator[KafkaBroker]:
    """``apache/kafka`` in KRaft mode. testcontainers' KafkaContainer only drives Confluent
    images, so this uses a plain container on a fixed port that it can advertise up front."""
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.docker_client import DockerClient

    from consumer.testing.localkafka import wait_for_broker

    port = _free_port()
    host = DockerClient().host()
    env = {
        "KAFKA_NODE_ID": "1",
        "KAFKA_PROCESS_ROLES": "broker,controller",
        "KAFKA_LISTENERS": f"PLAINTEXT://:{port},CONTROLLER://:9093",
        "KAFKA_ADVERTISED_LISTENERS": f"PLAINTEXT://{host}:{port}",
        "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@localhost:9093",
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_OFFSETS_TOPIC_NUM_PARTITIONS": "1",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR": "1",
        "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
    }
    image = f"apache/kafka:{KAFKA_VERSION}"
    container = DockerContainer(image, env=env).with_bind_ports(port, port)
    bootstrap = f"{host}:{port}"

    def restart(graceful: bool) -> None:
        wrapped = container.get_wrapped_container()
        if graceful:
            wrapped.restart(timeout=30)
        else:
            wrapped.kill()
            wrapped.start()
        wait_for_broker(bootstrap, timeout=120)

    container.start()
    try:
        wait_for_broker(bootstrap, timeout=120)
        yield KafkaBroker(bootstrap, "docker", restart)
    finally:
        container.stop()


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[KafkaBroker]:
    """Lazy: a session that never asks for Kafka (unit tests only) never starts one."""
    from consumer.testing.localkafka import LocalKafka, UnavailableError, wait_for_broker

    problem = ""  # reported outside the except blocks: no chained traceback on the failure
    if external := os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        try:
            wait_for_broker(external, timeout=30)
        except TimeoutError as exc:
            problem = f"KAFKA_BOOTSTRAP_SERVERS={external} does not answer ({exc})"
        if problem:
            _unavailable(problem)
        yield KafkaBroker(external, "external")
        return
    if _docker_answers():
        with _docker_kafka() as broker:
            yield broker
        return
    kafka = LocalKafka(version=KAFKA_VERSION)
    try:
        try:
            kafka.start()
        except UnavailableError as exc:  # StartError is a real failure and propagates
            problem = f"no Docker engine, and no local broker: {str(exc).splitlines()[0]}"
        if problem:
            _unavailable(problem)
        yield KafkaBroker(kafka.bootstrap_servers, "local", kafka.restart)
    finally:
        kafka.stop()


@pytest.fixture(scope="session")
def secure_kafka() -> Iterator[LocalKafka]:
    """A local broker with SASL_SSL (SCRAM-SHA-512, PLAIN) and mutual-TLS listeners, for the
    security tests. Always the jar broker, even with KAFKA_BOOTSTRAP_SERVERS or Docker: these
    tests need a broker whose users and certificates they made. Lazy, like ``kafka_broker``."""
    from consumer.testing.localkafka import LocalKafka, UnavailableError

    kafka = LocalKafka(version=KAFKA_VERSION, secure=True)
    problem = ""
    try:
        try:
            kafka.start()
        except UnavailableError as exc:  # StartError is a real failure and propagates
            problem = str(exc).splitlines()[0].rstrip(".")
        if problem:
            message = (
                f"no secured local broker for the Kafka security tests: {problem}. They run "
                "the official Kafka jars locally: install Java 17+, Maven 3 and openssl"
            )
            if os.environ.get("REQUIRE_KAFKA") == "1":
                pytest.fail(f"{message} (REQUIRE_KAFKA=1)", pytrace=False)
            pytest.skip(message)
        yield kafka
    finally:
        kafka.stop()


@pytest.fixture(scope="session")
def kafka_security(secure_kafka: LocalKafka) -> SecureListeners:
    """The secured listeners of ``secure_kafka``: addresses, CA, client certificate, users."""
    assert secure_kafka.security is not None
    return secure_kafka.security


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: KafkaBroker) -> str:
    """``host:port`` of the session's real broker."""
    return kafka_broker.bootstrap_servers


class NewTopic(Protocol):
    def __call__(self, partitions: int = 1) -> str: ...


def _wait_topic_ready(admin: AdminClient, topic: str, partitions: int, timeout: float) -> None:
    """CreateTopics returns once the controller committed; wait until every partition has a
    leader so a test's first produce does not race the broker loading the new partitions."""
    deadline = time.monotonic() + timeout
    while True:
        meta = admin.list_topics(topic=topic, timeout=10).topics.get(topic)
        if (
            meta is not None
            and meta.error is None
            and len(meta.partitions) == partitions
            and all(p.leader >= 0 and p.error is None for p in meta.partitions.values())
        ):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"topic {topic} not ready after {timeout:.0f}s: {meta}")
        time.sleep(0.05)


@pytest.fixture
def new_topic(kafka_bootstrap: str, request: pytest.FixtureRequest) -> Iterator[NewTopic]:
    """Factory for fresh, uniquely named topics, so tests share one broker without crosstalk."""
    from confluent_kafka.admin import AdminClient
    from confluent_kafka.cimpl import NewTopic as TopicSpec

    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    created: list[str] = []
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", request.node.name)[:150]

    def make(partitions: int = 1) -> str:
        name = f"{stem}-{uuid.uuid4().hex[:8]}"
        spec = TopicSpec(name, num_partitions=partitions, replication_factor=1)
        admin.create_topics([spec], operation_timeout=30, request_timeout=60)[name].result(60)
        created.append(name)
        _wait_topic_ready(admin, name, partitions, timeout=30)
        return name

    yield make
    if created:  # best effort: a broker that died mid-test has already failed the test
        for future in admin.delete_topics(created, operation_timeout=30).values():
            with suppress(Exception):
                future.result(30)
