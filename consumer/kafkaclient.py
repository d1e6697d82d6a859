"""librdkafka configuration from the settings: connection, security, and the at-least-once knobs.

The consumer and the dead-letter producer share one connection block, so they always reach the
same cluster the same way (SASL/SCRAM, TLS, or Amazon MSK IAM).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer

from consumer.config import Settings
from consumer.errors import KafkaRefused, KafkaUnreachable

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
    return bool(error.fatal()) or error.code() in FATAL_KAFKA_ERRORS or _tls_refused(error)


def _tls_refused(error: KafkaError) -> bool:
    """The broker rejected our certificate (a TLS alert): librdkafka calls that a transport
    error and reconnects forever, but a certificate is only fixed by an operator."""
    text = error.str().lower()
    return error.code() == KafkaError._TRANSPORT and "alert" in text and "certificate" in text


class KafkaErrorWatch:
    """librdkafka's client-level errors (its `error_cb`): the first fatal one kept, the rest
    logged, each kind once and then as a count every `summary_every_s` (a broker that is down
    makes librdkafka report every reconnect).

    Broker outages (`_TRANSPORT`, `_ALL_BROKERS_DOWN`) are only logged: librdkafka reconnects.
    """

    def __init__(self, summary_every_s: float = 60.0) -> None:
        self.fatal: KafkaRefused | None = None
        self.last: KafkaError | None = None
        self._summary_every_s = summary_every_s
        self._repeats: dict[str, int] = {}  # error name -> repeats since last logged
        self._summarised = time.monotonic()

    def __call__(self, error: KafkaError) -> None:
        if error.code() != KafkaError._ALL_BROKERS_DOWN:  # a consequence; keep the cause
            self.last = error
        if is_fatal(error):
            log.error("Kafka refused us", extra={"error": error.str()})
            self.fatal = self.fatal or KafkaRefused(f"Kafka refused us: {error.str()}")
            return
        name = error.name()
        if name not in self._repeats:
            self._repeats[name] = 0
            log.warning(
                "Kafka client error (repeats are counted, not logged)",
                extra={"error": error.str()},
            )
        else:
            self._repeats[name] += 1
        now = time.monotonic()
        if now - self._summarised >= self._summary_every_s:
            self._summarised = now
            counts = {k: n for k, n in self._repeats.items() if n}
            if counts:
                log.warning("Kafka client errors repeated", extra={"repeats": counts})
            self._repeats = dict.fromkeys(self._repeats, 0)


def wait_for_cluster(
    client: Consumer, errors: KafkaErrorWatch, bootstrap: str, timeout_s: float
) -> None:
    """Block until the cluster answers a metadata request (start-up).

    `KafkaRefused` as soon as Kafka refuses us (credentials, certificates); `KafkaUnreachable`,
    naming the bootstrap servers and the last error, if it has not answered within `timeout_s`.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            client.list_topics(timeout=max(0.1, min(1.0, deadline - time.monotonic())))
            return
        except KafkaException as exc:
            client.poll(0)  # serves error_cb, so a refusal is known at once
            if errors.fatal is not None:
                raise errors.fatal from None
            if time.monotonic() >= deadline:
                cause = errors.last.str() if errors.last is not None else exc.args[0].str()
                raise KafkaUnreachable(
                    f"cannot reach Kafka at {bootstrap} within {timeout_s:g} s "
                    f"(KAFKA_STARTUP_TIMEOUT_S): {cause}"
                ) from None


def common_config(
    settings: Settings,
    stats_cb: Callable[[str], None] | None = None,
    error_cb: Callable[[KafkaError], None] | None = None,
) -> dict[str, Any]:
    """Connection and security settings, then the `KAFKA_<PROPERTY>` passthrough that applies to
    consumers and producers alike (`consumer_config` and `producer_config` add the rest)."""
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
    consumer_only, producer_only = property_scopes(frozenset(settings.kafka_properties.items()))
    config.update(
        (k, v)
        for k, v in settings.kafka_properties.items()
        if k not in consumer_only and k not in producer_only
    )
    return config


def producer_config(
    settings: Settings, error_cb: Callable[[KafkaError], None] | None = None
) -> dict[str, Any]:
    """`common_config` and the passthrough properties that only a producer takes."""
    _consumer_only, producer_only = property_scopes(frozenset(settings.kafka_properties.items()))
    extra = {k: v for k, v in settings.kafka_properties.items() if k in producer_only}
    return common_config(settings, error_cb=error_cb) | extra


@functools.cache
def property_scopes(
    properties: frozenset[tuple[str, str]],
) -> tuple[frozenset[str], frozenset[str]]:
    """(consumer-only, producer-only) names among `properties`, as librdkafka itself says.

    Each property is given, alone, to a throwaway producer and consumer that connect nowhere:
    librdkafka warns when a property does not apply to that kind of client. So a consumer
    property (fetch.max.bytes, say) never reaches the dead-letter producer, which would warn
    about it, and a producer property never reaches the consumer. Properties librdkafka rejects
    are left for the real clients to report.
    """
    consumer_only: set[str] = set()
    producer_only: set[str] = set()
    for name, value in properties:
        if _warns(Producer, {name: value}, "is a consumer property"):
            consumer_only.add(name)
        elif _warns(Consumer, {name: value, "group.id": "probe"}, "is a producer property"):
            producer_only.add(name)
    return frozenset(consumer_only), frozenset(producer_only)


def _warns(kind: type[Any], config: dict[str, str], warning: str) -> bool:
    heard = _Heard()
    probe = logging.getLogger("personalize-consumer.property-probe")
    probe.propagate, probe.handlers = False, [heard]
    try:
        client = kind({**config, "logger": probe})
    except KafkaException:
        return False
    client.poll(0)
    if isinstance(client, Consumer):
        client.close()
    return any(warning in line for line in heard.lines)


class _Heard(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


#: librdkafka's prefetch, bounded: its defaults (100,000 messages a partition, 64 MB) are for
#: consumers that keep nothing themselves, while this one buffers `MAX_BUFFERED_RECORDS`.
#: Still seconds of work ahead at a pod's rate; a 1,000,000-record soak peaked ~25 MB lower with
#: these, and a very busy session still did not slow the others (bench/README.md, `hot`).
#: `KAFKA_QUEUED_MIN_MESSAGES` and `KAFKA_QUEUED_MAX_MESSAGES_KBYTES` override them.
PREFETCH = {"queued.min.messages": 20000, "queued.max.messages.kbytes": 8192}

#: Each partition's share of a fetch response (librdkafka: 1 MB). The consumer queue holds a
#: response one partition after another, so a backlog was read in blocks of thousands of records
#: per partition, seconds apart: a session's events arrived in bursts, and its partly filled
#: calls left when the linger ran out. bench `dense` (200,000 records, 4 partitions): 8.5 events
#: a call at 1 MB, 9.2 at 64 KB (its sessions allow 9.56), and no longer linger helped. A larger
#: record is still fetched (librdkafka grows the request). `KAFKA_MAX_PARTITION_FETCH_BYTES`
#: overrides it.
FETCH = {"max.partition.fetch.bytes": 65536}


def consumer_config(
    settings: Settings,
    stats_cb: Callable[[str], None] | None = None,
    error_cb: Callable[[KafkaError], None] | None = None,
) -> dict[str, Any]:
    """Auto-commit and the automatic offset store off: only done records are committed."""
    consumer_only, _producer_only = property_scopes(frozenset(settings.kafka_properties.items()))
    return {
        **common_config(settings, stats_cb, error_cb),
        **PREFETCH,
        **FETCH,
        **{k: v for k, v in settings.kafka_properties.items() if k in consumer_only},
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
