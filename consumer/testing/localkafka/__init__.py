"""A real single-node Apache Kafka broker from the official jars, for tests, the demo and the
benchmark on machines without Docker (`broker.py`), optionally with SASL/TLS listeners
(`security.py`)."""

from __future__ import annotations

from consumer.testing.localkafka.broker import (
    DEFAULT_VERSION,
    LocalKafka,
    start_local_kafka,
    wait_for_broker,
)
from consumer.testing.localkafka.errors import LocalKafkaError, StartError, UnavailableError
from consumer.testing.localkafka.security import MODES, Mode, SecureListeners

__all__ = [
    "DEFAULT_VERSION",
    "MODES",
    "LocalKafka",
    "LocalKafkaError",
    "Mode",
    "SecureListeners",
    "StartError",
    "UnavailableError",
    "start_local_kafka",
    "wait_for_broker",
]
