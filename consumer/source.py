"""The Kafka consumer: at-least-once settings and the rebalance hooks that keep offsets honest.

Auto-commit and the automatic offset store are off: an offset is committed only when the offset
tracker says every record below it is done (pitfall 1). Assignment is cooperative-sticky so a
rebalance moves only the partitions that must move.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection

from confluent_kafka import Consumer, Message, TopicPartition

from consumer.records import SourceRecord

log = logging.getLogger(__name__)

TP = tuple[str, int]


def to_record(message: Message, epoch: int = 0) -> SourceRecord:
    _kind, timestamp = message.timestamp()
    headers = message.headers() or []
    topic, partition, offset = message.topic(), message.partition(), message.offset()
    assert topic is not None and partition is not None and offset is not None
    return SourceRecord(
        topic=topic,
        partition=partition,
        offset=offset,
        key=message.key(),
        value=message.value(),
        headers=list(headers.items() if isinstance(headers, dict) else headers),
        timestamp_ms=timestamp if timestamp > 0 else None,
        epoch=epoch,
    )


class Source:
    """Subscribes and forwards assignment changes to the pipeline as (topic, partition) lists."""

    def __init__(
        self,
        consumer: Consumer,
        topics: tuple[str, ...],
        on_assign: Callable[[list[TP]], None],
        on_revoke: Callable[[list[TP]], None],
        on_lost: Callable[[list[TP]], None],
    ) -> None:
        self.consumer = consumer
        self._paused: set[TP] = set()
        self._on_assign, self._on_revoke, self._on_lost = on_assign, on_revoke, on_lost
        consumer.subscribe(
            list(topics), on_assign=self._assigned, on_revoke=self._revoked, on_lost=self._lost
        )

    def _assigned(self, _c: Consumer, partitions: list[TopicPartition]) -> None:
        tps = [(p.topic, p.partition) for p in partitions]
        log.info("partitions assigned", extra={"partitions": _fmt(tps)})
        self._on_assign(tps)

    def _revoked(self, _c: Consumer, partitions: list[TopicPartition]) -> None:
        tps = [(p.topic, p.partition) for p in partitions]
        log.info("partitions revoked", extra={"partitions": _fmt(tps)})
        self._on_revoke(tps)

    def _lost(self, _c: Consumer, partitions: list[TopicPartition]) -> None:
        tps = [(p.topic, p.partition) for p in partitions]
        log.warning(
            "partitions lost; their unfinished work is dropped", extra={"partitions": _fmt(tps)}
        )
        self._on_lost(tps)

    def commit(self, positions: dict[TP, int]) -> None:
        offsets = [TopicPartition(t, p, o) for (t, p), o in positions.items()]
        self.consumer.commit(offsets=offsets, asynchronous=False)

    def steer(self, stop_all: bool, held: Collection[TP] = ()) -> None:
        """Fetch exactly the assigned partitions that are not held (or none, with `stop_all`)."""
        assigned = {(p.topic, p.partition) for p in self.consumer.assignment()}
        want = assigned if stop_all else assigned & set(held)
        pause, resume = want - self._paused, (self._paused & assigned) - want
        if pause:
            self.consumer.pause([TopicPartition(t, p) for t, p in pause])
        if resume:
            self.consumer.resume([TopicPartition(t, p) for t, p in resume])
        self._paused = want

    def rewind(self, tp: TP, offset: int) -> None:
        """Fetch `tp` again from `offset` (its records after that were not taken in)."""
        self.consumer.seek(TopicPartition(tp[0], tp[1], offset))


def _fmt(tps: list[TP]) -> str:
    return ",".join(f"{t}[{p}]" for t, p in tps)
