"""The dead-letter producer: a record is done only once the broker acknowledged its copy.

Produced asynchronously with acks=all and idempotence; `on_acked` runs (from `poll`) once the copy
is safe. A retriable failure produces the copy again, so it is never dropped; a permanent one
(authorization, a deleted topic, a record too large for the topic) sets `fatal`, and the pipeline
stops rather than commit past a record it could not park anywhere (pitfall 4).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from typing import Any, Protocol

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from consumer.deadletter.headers import dead_letter_headers
from consumer.errors import DeadLetterRefused, FatalError
from consumer.kafkaclient import KafkaErrorWatch, produce
from consumer.records import TP, Headers, Rejected

log = logging.getLogger(__name__)

OnAcked = Callable[[Rejected], None]


class DeadLetterSink(Protocol):
    """Where rejected records go: the dead-letter topic, or (for a replay) nowhere new."""

    @property
    def fatal(self) -> FatalError | None: ...
    @property
    def outstanding(self) -> int: ...
    def outstanding_for(self, partitions: Collection[TP]) -> int: ...
    def send(self, item: Rejected, on_acked: OnAcked) -> None: ...
    def poll(self, timeout_s: float = 0.0) -> None: ...
    def close(self, timeout_s: float = 10.0) -> None: ...


PERMANENT = frozenset(
    {
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
        KafkaError.MSG_SIZE_TOO_LARGE,
        KafkaError.INVALID_RECORD,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._UNKNOWN_TOPIC,
        KafkaError._INVALID_ARG,
    }
)
TOO_LARGE = frozenset({KafkaError.MSG_SIZE_TOO_LARGE})


class DeadLetterProducer:
    """Produces rejected records to `topic`, keeping their bytes; see the module docstring."""

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
        self._outstanding: dict[TP, int] = {}
        self._retry: list[tuple[Rejected, OnAcked]] = []
        self.fatal: FatalError | None = None
        self._closed = False

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
                if errors.fatal is not None:
                    raise errors.fatal from None  # Kafka refuses this client: say that, not more
                if time.monotonic() >= deadline:
                    cause = errors.last or exc
                    raise DeadLetterRefused(f"cannot check DEAD_LETTER_TOPIC: {cause}") from None
        topic = metadata.topics.get(self._topic)
        if topic is None or topic.error is not None:
            why = topic.error.str() if topic is not None and topic.error else "not found"
            raise DeadLetterRefused(
                f"DEAD_LETTER_TOPIC {self._topic!r} is not usable: {why} (it must exist: "
                "create it as the README says)"
            )

    @property
    def outstanding(self) -> int:
        return sum(self._outstanding.values())

    def outstanding_for(self, partitions: Collection[TP]) -> int:
        return sum(n for tp, n in self._outstanding.items() if tp in partitions)

    def send(self, item: Rejected, on_acked: OnAcked) -> None:
        tp = (item.record.topic, item.record.partition)
        self._outstanding[tp] = self._outstanding.get(tp, 0) + 1
        self._produce(item, on_acked)

    def poll(self, timeout_s: float = 0.0) -> None:
        """Serve delivery reports; produce again what failed last time."""
        retry, self._retry = self._retry, []
        for item, on_acked in retry:
            self._produce(item, on_acked)
        self._producer.poll(timeout_s)

    def _produce(self, item: Rejected, on_acked: OnAcked) -> None:
        record = item.record
        tp = (record.topic, record.partition)

        headers = dead_letter_headers(item, self._group_id, datetime.now(UTC))

        def report(err: KafkaError | None, _msg: Message) -> None:
            if err is None:
                self._outstanding[tp] -= 1
                log.info("record dead-lettered", extra=_where(item) | _why(item))
                on_acked(item)
            else:
                self._failed(item, on_acked, err, headers)

        message: dict[str, Any] = {
            "value": record.value,
            "key": record.key,
            "headers": headers,
            "on_delivery": report,
        }
        if record.timestamp_ms is not None:
            message["timestamp"] = record.timestamp_ms
        try:
            produce(self._producer, self._topic, **message)
        except KafkaException as exc:  # refused before it left, e.g. over message.max.bytes
            self._failed(item, on_acked, exc.args[0], headers)

    def _failed(self, item: Rejected, on_acked: OnAcked, err: KafkaError, headers: Headers) -> None:
        log.error(
            "dead-letter produce failed; record stays uncommitted",
            extra=_where(item) | {"error": err.str()},
        )
        if not (err.fatal() or err.code() in PERMANENT):
            self._retry.append((item, on_acked))
            return
        # Not in flight any more: a drain need not wait for it. It stays unfinished, uncommitted.
        self._outstanding[(item.record.topic, item.record.partition)] -= 1
        self.fatal = self.fatal or DeadLetterRefused(self._refusal(item, err, headers))

    def _refusal(self, item: Rejected, err: KafkaError, headers: Headers) -> str:
        """What to fix, for the operator: the size limit to raise, or the broker's refusal."""
        r = item.record
        where = f"{r.topic}[{r.partition}] offset {r.offset}"
        text = f"cannot write to DEAD_LETTER_TOPIC {self._topic!r}: {err.str()}"
        if err.code() not in TOO_LARGE:
            return f"{text} (record {where} stays uncommitted)"
        size = len(r.value or b"") + len(r.key or b"")
        size += sum(len(k) + len(v or b"") for k, v in headers)
        return (
            f"{text}: record {where} is {size} bytes with its dead-letter headers, more than "
            f"the topic accepts; raise the topic's max.message.bytes (kafka-configs --alter "
            f"--entity-type topics --entity-name {self._topic} --add-config "
            f"max.message.bytes=...) and, above 1000000, KAFKA_MESSAGE_MAX_BYTES for the producer"
        )

    def close(self, timeout_s: float = 10.0) -> None:
        """Wait (bounded) for copies in flight, then let the client go; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._producer.flush(timeout_s)


def _where(item: Rejected) -> dict[str, Any]:
    r = item.record
    return {"topic": r.topic, "partition": r.partition, "offset": r.offset}


def _why(item: Rejected) -> dict[str, Any]:
    return {"stage": item.failure.stage.value, "error": item.failure.error_class}
