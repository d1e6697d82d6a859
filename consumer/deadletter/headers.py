"""The dead-letter record: the original's bytes, then context headers saying where and why.

Header names follow Kafka Connect's `__connect.errors.*` convention (UTF-8 string values), so
tools that read Connect dead-letter queues read ours. `original` reads them back for a replay.
"""

from __future__ import annotations

from datetime import datetime

from consumer.records import Headers, Rejected, SourceRecord

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


def original(record: SourceRecord) -> SourceRecord:
    """The record as it was on its source topic (itself, if it carries no dead-letter headers)."""
    headers: dict[str, str | bytes | None] = {}
    for key, value in record.headers:
        headers[key] = value  # the last wins: a record dead-lettered twice has its newest context
    topic, partition, offset = (headers.get(h) for h in (H_TOPIC, H_PARTITION, H_OFFSET))
    if not (topic and partition and offset):
        return record
    try:
        return record._replace(
            topic=_text(topic), partition=int(_text(partition)), offset=int(_text(offset))
        )
    except ValueError:
        return record


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
