"""`personalize-consumer replay`: send what now maps from the dead-letter topic, after a fix.

The dead-letter topic is consumed like a source topic, by its own group (`<KAFKA_GROUP_ID>.replay`),
so progress is committed and a replay can be stopped and resumed. Each record is mapped under its
original coordinates (from the `__connect.errors.*` headers), so a derived eventId is the one the
original send would have used and per-topic tracking ids still apply. Records that still fail are
left where they are: counted and committed past, never dead-lettered a second time.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Collection

from consumer.deadletter import H_OFFSET, H_PARTITION, H_TOPIC
from consumer.kafkaconfig import KafkaErrorWatch
from consumer.records import Rejected, SourceRecord

log = logging.getLogger(__name__)


def original(record: SourceRecord) -> SourceRecord:
    """The record as it was on its source topic (itself, if it carries no dead-letter headers)."""
    headers: dict[str, str | bytes | None] = {}
    for key, value in record.headers:
        headers[key] = value  # the last wins: a record dead-lettered twice has its newest context
    topic, partition, offset = (headers.get(h) for h in (H_TOPIC, H_PARTITION, H_OFFSET))
    if not (topic and partition and offset):
        return record
    try:
        return dataclasses.replace(
            record,
            topic=_text(topic),
            partition=int(_text(partition)),
            offset=int(_text(offset)),
        )
    except ValueError:
        return record


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


class LeaveInPlace:
    """The dead-letter sink of a replay: a record that still fails stays where it already is."""

    fatal: Exception | None = None
    outstanding = 0

    def send(self, item: Rejected, on_acked: Callable[[Rejected], None]) -> None:
        log.info(
            "still failing; left on the dead-letter topic",
            extra={
                "partition": item.record.partition,
                "offset": item.record.offset,
                "stage": item.failure.stage.value,
                "error": item.failure.error_class,
            },
        )
        on_acked(item)

    def outstanding_for(self, _partitions: Collection[tuple[str, int]]) -> int:
        return 0

    def poll(self, _timeout_s: float = 0.0) -> None:
        return None

    def check_topic(self, _errors: KafkaErrorWatch, _timeout_s: float = 0.0) -> None:
        return None

    def close(self, _timeout_s: float = 0.0) -> None:
        return None
