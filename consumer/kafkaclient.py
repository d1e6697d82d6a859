"""librdkafka configuration from the settings: connection, security, and the at-least-once knobs.

The consumer and the dead-letter producer share one connection block, so they always reach the
same cluster the same way (SASL/SCRAM, TLS, or Amazon MSK IAM).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, Producer

from consumer.config import Settings
from consumer.errors import KafkaRefused

log = logging.getLogger(__name__)

#: librdkafka retries these forever, but only an operator can fix them: stop and say so.
FATAL_KAFKA_ERRORS = frozenset(
    {
        KafkaError._AUTHENTICATION,
        KafkaError.SASL_AUTHENTICATION_FAILED,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.GROUP_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
        KafkaError._SSL,
    }
)


def is_fatal(error: KafkaError) -> bool:
    return bool(error.fatal()) or error.code() in FATAL_KAFKA_ERRORS


class KafkaErrorWatch:
    """librdkafka's client-level errors (its `error_cb`): logged, and the first fatal one kept.

    Broker outages (`_TRANSPORT`, `_ALL_BROKERS_DOWN`) are only logged: librdkafka reconnects.
    """

    def __init__(self) -> None:
        self.fatal: KafkaRefused | None = None
        self.last: KafkaError | None = None

    def __call__(self, error: KafkaError) -> None:
        if error.code() != KafkaError._ALL_BROKERS_DOWN:  # a consequence; keep the cause
            self.last = error
        if is_fatal(error):
            log.error("Kafka refused us", extra={"error": str(error)})
            self.fatal = self.fatal or KafkaRefused(f"Kafka refused us: {error.str()}")
        else:
            log.warning("Kafka client error", extra={"error": str(error)})


def common_config(
    settings: Settings,
    stats_cb: Callable[[str], None] | None = None,
    error_cb: Callable[[KafkaError], None] | None = None,
) -> dict[str, Any]:
    """Connection and security settings, then any `KAFKA_<PROPERTY>` passthrough on top."""
    config: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "client.id": "personalize-consumer",
        "security.protocol": settings.kafka_security_protocol.lower(),
        # librdkafka's own log lines go through Python logging, so they come out as JSON too.
        "logger": logging.getLogger("librdkafka"),
    }
    if settings.kafka_msk_iam:
        config["sasl.mechanism"] = "OAUTHBEARER"
        config["oauth_cb"] = _msk_iam_token(settings.kafka_msk_iam_region or settings.aws_region)
    elif settings.kafka_sasl_mechanism:
        config["sasl.mechanism"] = settings.kafka_sasl_mechanism
        if settings.kafka_sasl_username is not None:
            config["sasl.username"] = settings.kafka_sasl_username
        if settings.kafka_sasl_password is not None:
            config["sasl.password"] = settings.kafka_sasl_password.get_secret_value()
    optional = {
        "ssl.ca.location": settings.kafka_ssl_ca_location,
        "ssl.certificate.location": settings.kafka_ssl_certificate_location,
        "ssl.key.location": settings.kafka_ssl_key_location,
    }
    config.update({k: str(v) for k, v in optional.items() if v is not None})
    if settings.kafka_ssl_key_password is not None:
        config["ssl.key.password"] = settings.kafka_ssl_key_password.get_secret_value()
    if error_cb is not None:
        config["error_cb"] = error_cb
    if stats_cb is not None:
        config["stats_cb"] = stats_cb
        config["statistics.interval.ms"] = 5000
    config.update(settings.kafka_properties)
    return config


def consumer_config(
    settings: Settings,
    stats_cb: Callable[[str], None] | None = None,
    error_cb: Callable[[KafkaError], None] | None = None,
) -> dict[str, Any]:
    """Auto-commit and the automatic offset store off: only done records are committed."""
    return {
        **common_config(settings, stats_cb, error_cb),
        "group.id": settings.kafka_group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": settings.kafka_auto_offset_reset,
        "partition.assignment.strategy": "cooperative-sticky",
        "max.poll.interval.ms": settings.max_poll_interval_ms,
        "isolation.level": "read_committed",
        "enable.partition.eof": False,
    }


def _msk_iam_token(region: str) -> Callable[[str], tuple[str, float]]:
    def token(_config: str) -> tuple[str, float]:
        from aws_msk_iam_sasl_signer import MSKAuthTokenProvider

        value, expiry_ms = MSKAuthTokenProvider.generate_auth_token(region)
        return value, expiry_ms / 1000

    return token


def produce(producer: Producer, topic: str, **message: Any) -> None:
    """`producer.produce`, waiting for room while librdkafka's local queue is full."""
    while True:
        try:
            producer.produce(topic, **message)
            return
        except BufferError:
            producer.poll(0.1)  # let delivery reports drain the queue
