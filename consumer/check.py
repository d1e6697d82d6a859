"""`personalize-consumer check`: how records of a topic would map, before going live.

Reads up to N records from the start of a topic (a source topic, or the dead-letter topic after a
fix) with a throwaway consumer group that never commits, decodes and maps them exactly as `run`
does, and calls no AWS API. Sensitive values (user ids, item ids, properties) are masked unless
asked for: the output of a check is often pasted into tickets.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from consumer.app import build_transform
from consumer.config import Settings
from consumer.errors import TransientError
from consumer.kafkaclient import KafkaErrorWatch, consumer_config
from consumer.ops.progress import bar
from consumer.records import OPERATIONS, TOMBSTONE, Failure, MappedEvent, Skipped, SourceRecord
from consumer.source.kafka import to_record
from consumer.transform import Transform

SENSITIVE = ("userId", "itemId", "actionId", "properties", "impression")


@dataclass
class CheckReport:
    read: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    examples: list[dict[str, Any]] = field(default_factory=list)

    def render(self, top: int = 5) -> str:
        lines = [f"read {self.read} records"]
        lines += [f"  {outcome}: {n}" for outcome, n in self.outcomes.most_common()]
        if self.reasons:
            lines.append("top reasons:")
            lines += [f"  {n} x {reason}" for reason, n in self.reasons.most_common(top)]
        if self.examples:
            lines.append("mapped examples:")
            lines += ["  " + json.dumps(e, default=str, sort_keys=True) for e in self.examples]
        return "\n".join(lines)


def check(
    settings: Settings,
    topic: str,
    records: int,
    examples: int = 3,
    show_values: bool = False,
    dead_letter: bool = False,
) -> CheckReport:
    """Read up to `records` records of `topic` and report how `run` would treat each one.

    `dead_letter`: the topic holds dead-letter copies, mapped as their originals (as a replay).
    """
    transform = build_transform(settings, replay=dead_letter)
    errors = KafkaErrorWatch()
    reader = Consumer(
        consumer_config(settings, error_cb=errors)
        | {
            "group.id": f"personalize-consumer-check-{uuid.uuid4().hex[:8]}",  # never commits
            "enable.partition.eof": True,
        }
    )
    report = CheckReport()
    try:
        partitions = reader.list_topics(topic, timeout=15).topics[topic].partitions
        there = sum(_size(reader, TopicPartition(topic, p)) for p in partitions)
        reader.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        at_end: set[int] = set()
        with bar(min(records, there), f"check {topic}") as shown:
            while report.read < records and len(at_end) < len(partitions):
                if errors.fatal is not None:
                    raise errors.fatal
                message = reader.poll(1.0)
                if message is None:
                    continue
                if message.error() is not None:
                    at_end.add(message.partition() or 0)  # _PARTITION_EOF: nothing more there
                    continue
                report.read += 1
                shown.update()
                _classify(report, to_record(message), transform, examples, show_values)
    finally:
        reader.close()
        transform.close()
    return report


def _size(reader: Consumer, tp: TopicPartition) -> int:
    low, high = reader.get_watermark_offsets(tp, timeout=15)
    return int(high - low)


def _classify(
    report: CheckReport,
    record: SourceRecord,
    transform: Transform,
    examples: int,
    show_values: bool,
) -> None:
    try:
        outcome = transform(record)
    except TransientError as exc:
        report.outcomes["unavailable (would be retried)"] += 1
        report.reasons[f"decode: {exc}"] += 1
        return
    if isinstance(outcome, Failure):
        report.outcomes[f"dead-letter ({outcome.stage.value})"] += 1
        report.reasons[f"{outcome.stage.value}: {outcome.reason}"] += 1
    elif isinstance(outcome, Skipped):
        report.outcomes["skipped (tombstone)" if outcome.reason == TOMBSTONE else "filtered"] += 1
    elif isinstance(outcome, MappedEvent):
        report.outcomes["would send"] += 1
        if len(report.examples) < examples:
            report.examples.append(_example(outcome, show_values))


def _example(mapped: MappedEvent, show_values: bool) -> dict[str, Any]:
    key = mapped.session
    if key.operation == "PutEvents":
        event = dict(mapped.event) | {
            "trackingId": key.tracking_id,
            "sessionId": key.session_id,
            "userId": key.user_id,
        }
    else:  # the entry as its request carries it, and where it goes
        target = OPERATIONS[key.operation].target
        event = {"operation": key.operation, target: key.tracking_id} | dict(mapped.event)
    if not show_values:
        for name in SENSITIVE:
            if event.get(name) is not None:
                event[name] = "***"
    return event
