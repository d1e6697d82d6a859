"""The dead-letter topic: original bytes kept, context added as headers, acknowledged before commit.

Header names follow Kafka Connect's `__connect.errors.*` convention (string values), so existing
dead-letter tooling reads them. A record counts as done only when the broker acknowledged it with
acks=all; a produce that fails leaves the record uncommitted, to be tried again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from typing import Any, Protocol

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from consumer.kafkaconfig import KafkaErrorWatch
from consumer.records import Headers, Rejected

log = logging.getLogger(__name__)

PREFIX = "__connect.errors."
H_TOPIC = PREFIX + "topic"
H_PARTITION = PREFIX + "partition"
H_OFFSET = PREFIX + "offset"
H_TIMESTAMP = PREFIX + "timestamp"
H_GROUP = PREFIX + "consumer.group"
H_STAGE = PREFIX + "stage"
H_ERROR_CLASS = PREFIX + "exception.class.name"
H_REASON = PREFIX + "exception.message"
H_FAILED_AT = PREFIX + "failed.at"
MAX_REASON_CHARS = 1000


def dead_letter_headers(item: Rejected, group_id: str, failed_at: datetime) -> Headers:
    """The record's own headers unchanged, then ours."""
    record, failure = item.record, item.failure
    context = [
        (H_TOPIC, record.topic),
        (H_PARTITION, str(record.partition)),
        (H_OFFSET, str(record.offset)),
        (H_TIMESTAMP, "" if record.timestamp_ms is None else str(record.timestamp_ms)),
        (H_GROUP, group_id),
        (H_STAGE, failure.stage.value),
        (H_ERROR_CLASS, failure.error_class),
        (H_REASON, failure.reason[:MAX_REASON_CHARS]),
        (H_FAILED_AT, failed_at.isoformat(timespec="milliseconds")),
    ]
    return [*record.headers, *((k, v.encode()) for k, v in context)]


class DeadLetterSink(Protocol):
    """Where rejected records go: the dead-letter topic, or (for a replay) nowhere new."""

    fatal: Exception | None

    @property
    def outstanding(self) -> int: ...
    def outstanding_for(self, partitions: Collection[tuple[str, int]]) -> int: ...
    def send(self, item: Rejected, on_acked: Callable[[Rejected], None]) -> None: ...
    def poll(self, timeout_s: float = 0.0) -> None: ...
    def close(self, timeout_s: float = 10.0) -> None: ...


class DeadLetterError(Exception):
    """The dead-letter topic refuses records for good (authorization, size): operator needed."""


PERMANENT = frozenset(
    {
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
        KafkaError.MSG_SIZE_TOO_LARGE,
        KafkaError.INVALID_RECORD,
        KafkaError._INVALID_ARG,
    }
)


class DeadLetterProducer:
    """Produces rejected records asynchronously; `on_acked` runs (from `poll`) once acks=all holds.

    A retriable failure produces the record again, so it is never dropped; a permanent one sets
    `fatal`, and the pipeline stops rather than commit past a record it could not park anywhere.
    """

    def __init__(self, producer_config: dict[str, Any], topic: str, group_id: str) -> None:
        config = {
            **producer_config,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            # a missing topic is a configuration error to report, not one for the broker to paper
            # over with a one-partition default topic
            "allow.auto.create.topics": False,
        }
        self._producer = Producer(config)
        self._topic = topic
        self._group_id = group_id
        self._outstanding: dict[tuple[str, int], int] = {}
        self._retry: list[tuple[Rejected, Callable[[Rejected], None]]] = []
        self.fatal: Exception | None = None

    def check_topic(self, errors: KafkaErrorWatch, timeout_s: float = 15.0) -> None:
        """Fail at start-up, naming the cause, when the topic is missing or Kafka refuses us.

        Polls while it waits, so librdkafka's client errors (bad credentials, untrusted
        certificates) reach `errors` and end the wait at once instead of a generic timeout.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                metadata = self._producer.list_topics(self._topic, timeout=0.5)
                break
            except KafkaException as exc:
                self._producer.poll(0)
                if errors.fatal is not None or time.monotonic() >= deadline:
                    cause = errors.fatal or errors.last or exc
                    raise DeadLetterError(f"cannot check DEAD_LETTER_TOPIC: {cause}") from exc
        topic = metadata.topics.get(self._topic)
        if topic is None or topic.error is not None:
            why = topic.error.str() if topic is not None and topic.error else "not found"
            raise DeadLetterError(f"DEAD_LETTER_TOPIC {self._topic!r} is not usable: {why}")

    @property
    def outstanding(self) -> int:
        return sum(self._outstanding.values())

    def outstanding_for(self, partitions: Collection[tuple[str, int]]) -> int:
        return sum(n for tp, n in self._outstanding.items() if tp in partitions)

    def send(self, item: Rejected, on_acked: Callable[[Rejected], None]) -> None:
        tp = (item.record.topic, item.record.partition)
        self._outstanding[tp] = self._outstanding.get(tp, 0) + 1
        self._produce(item, on_acked)

    def poll(self, timeout_s: float = 0.0) -> None:
        """Serve delivery reports; produce again what failed last time."""
        retry, self._retry = self._retry, []
        for item, on_acked in retry:
            self._produce(item, on_acked)
        self._producer.poll(timeout_s)

    def _produce(self, item: Rejected, on_acked: Callable[[Rejected], None]) -> None:
        record = item.record
        tp = (record.topic, record.partition)

        def report(err: KafkaError | None, _msg: Message) -> None:
            if err is None:
                self._outstanding[tp] -= 1
                on_acked(item)
                return
            log.error(
                "dead-letter produce failed; record stays uncommitted",
                extra=_where(item) | {"error": str(err)},
            )
            if err.fatal() or err.code() in PERMANENT:
                self.fatal = DeadLetterError(
                    f"cannot write to DEAD_LETTER_TOPIC {self._topic!r}: {err.str()}"
                )
            else:
                self._retry.append((item, on_acked))

        kwargs: dict[str, Any] = {}
        if record.timestamp_ms is not None:
            kwargs["timestamp"] = record.timestamp_ms
        headers = dead_letter_headers(item, self._group_id, datetime.now(UTC))
        while True:
            try:
                self._producer.produce(
                    self._topic,
                    value=record.value,
                    key=record.key,
                    headers=headers,
                    on_delivery=report,
                    **kwargs,
                )
                return
            except BufferError:
                self._producer.poll(0.1)  # local queue full: let deliveries drain

    def close(self, timeout_s: float = 10.0) -> None:
        self._producer.flush(timeout_s)
        self._producer.close()


def _where(item: Rejected) -> dict[str, Any]:
    r = item.record
    return {"topic": r.topic, "partition": r.partition, "offset": r.offset}
