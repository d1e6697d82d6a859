"""The dead-letter topic: original bytes kept, context added as headers, acknowledged before commit.

Header names follow Kafka Connect's `__connect.errors.*` convention (string values), so existing
dead-letter tooling reads them. A record counts as done only when the broker acknowledged it with
acks=all; a produce that fails leaves the record uncommitted, to be tried again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

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


class DeadLetterProducer:
    """Produces rejected records and reports which ones the broker acknowledged."""

    def __init__(self, producer_config: dict[str, Any], topic: str, group_id: str) -> None:
        config = {
            **producer_config,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
        }
        self._producer = Producer(config)
        self._topic = topic
        self._group_id = group_id

    def send(self, items: Sequence[Rejected], timeout_s: float = 30.0) -> list[Rejected]:
        """Produce and wait for acknowledgements; return the items the broker acknowledged."""
        acked: list[Rejected] = []
        outstanding = len(items)
        now = datetime.now(UTC)

        def on_delivery(item: Rejected) -> Any:
            def report(err: KafkaError | None, _msg: Message) -> None:
                nonlocal outstanding
                outstanding -= 1
                if err is None:
                    acked.append(item)
                else:
                    log.error(
                        "dead-letter produce failed; record stays uncommitted",
                        extra=_where(item) | {"error": str(err)},
                    )

            return report

        for item in items:
            self._produce(item, now, on_delivery(item))
        self._producer.flush(timeout_s)
        if outstanding:
            log.error("dead-letter produce not acknowledged in time", extra={"count": outstanding})
        return acked

    def _produce(self, item: Rejected, now: datetime, callback: Any) -> None:
        record = item.record
        kwargs: dict[str, Any] = {}
        if record.timestamp_ms is not None:
            kwargs["timestamp"] = record.timestamp_ms
        while True:
            try:
                self._producer.produce(
                    self._topic,
                    value=record.value,
                    key=record.key,
                    headers=dead_letter_headers(item, self._group_id, now),
                    on_delivery=callback,
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
