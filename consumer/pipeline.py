"""The run loop: consume a batch, take every record to done, commit what is done.

Each record ends one of three ways — its events were accepted by PutEvents, or it was
dead-lettered and the broker acknowledged that, or it is still unfinished because the endpoint or
the dead-letter produce is unavailable. Unfinished partitions are rewound to their first unfinished
record and consumed again, so the loop keeps polling (and keeps its group membership) instead of
blocking on an outage, and nothing is committed past an unfinished record.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from consumer.batching import plan_calls
from consumer.deadletter import DeadLetterProducer
from consumer.decode import SchemalessDecoder
from consumer.mapping import InteractionMapper
from consumer.offsets import OffsetTracker
from consumer.records import Failure, MappedEvent, Rejected, SourceRecord
from consumer.sink import PutEventsSink
from consumer.source import TP, Source, to_record

log = logging.getLogger(__name__)


@dataclass
class RunSummary:
    consumed: int = 0
    sent_events: int = 0
    calls: int = 0
    dead_lettered: Counter[str] = field(default_factory=Counter)
    committed: dict[TP, int] = field(default_factory=dict)

    def line(self) -> str:
        by_stage = ", ".join(f"{k}={v}" for k, v in sorted(self.dead_lettered.items())) or "none"
        committed = sum(self.committed.values())
        return (
            f"consumed={self.consumed} sent={self.sent_events} calls={self.calls} "
            f"dead_lettered={sum(self.dead_lettered.values())} ({by_stage}) "
            f"committed_offsets={committed} over {len(self.committed)} partitions"
        )


class Pipeline:
    def __init__(
        self,
        consumer: Consumer,
        topics: tuple[str, ...],
        decoder: SchemalessDecoder,
        mapper: InteractionMapper,
        sink: PutEventsSink,
        dead_letter: DeadLetterProducer,
        batch_size: int = 500,
        max_poll_interval_ms: int = 300_000,
    ) -> None:
        self._decoder, self._mapper = decoder, mapper
        self._sink, self._dead_letter = sink, dead_letter
        self._batch_size = batch_size
        # Half the poll interval for sending a batch, the rest for slow calls and the commit.
        self._send_budget_s = max_poll_interval_ms / 1000 / 2
        self._tracker = OffsetTracker()
        self._assigned: set[TP] = set()
        self.summary = RunSummary()
        self._source = Source(consumer, topics, self._on_assign, self._on_revoke, self._on_lost)

    # -- the loop -----------------------------------------------------------------------------

    def run(self, stop: threading.Event, until_caught_up: bool = False) -> RunSummary:
        consumer = self._source.consumer
        try:
            while not stop.is_set():
                messages = consumer.consume(self._batch_size, timeout=0.5)
                if messages:
                    self._process(messages)
                    self._commit()
                elif until_caught_up and self._caught_up():
                    log.info("caught up with every assigned partition")
                    break
        finally:
            self._commit()
        return self.summary

    def close(self) -> None:
        """Leave the group promptly: partitions move without waiting for a session timeout."""
        self._dead_letter.close()
        self._source.consumer.close()

    def _process(self, messages: list[Message]) -> None:
        records = []
        for message in messages:
            error = message.error()
            if error is not None:
                if error.fatal():
                    raise KafkaException(error)
                log.warning("consumer error", extra={"error": str(error)})
                continue
            record = to_record(message)
            self._tracker.track((record.topic, record.partition), record.offset)
            records.append(record)
        self.summary.consumed += len(records)

        mapped, rejected = self._decode_and_map(records)
        self._dead_letter_all(rejected)
        deadline = time.monotonic() + self._send_budget_s
        for call in plan_calls(mapped):
            result = self._sink.send(call, deadline)
            self.summary.calls += result.calls
            self.summary.sent_events += len(result.accepted)
            self._finish(m.record for m in result.accepted)
            self._dead_letter_all([Rejected(m.record, f) for m, f in result.rejected])
        self._rewind_unfinished({(r.topic, r.partition) for r in records})

    def _decode_and_map(
        self, records: list[SourceRecord]
    ) -> tuple[list[MappedEvent], list[Rejected]]:
        mapped: list[MappedEvent] = []
        rejected: list[Rejected] = []
        for record in records:
            value = self._decoder.decode(record.value)
            outcome = value if isinstance(value, Failure) else self._mapper.map(record, value)
            if isinstance(outcome, Failure):
                rejected.append(Rejected(record, outcome))
            else:
                mapped.append(outcome)
        return mapped, rejected

    def _dead_letter_all(self, rejected: list[Rejected]) -> None:
        if not rejected:
            return
        for item in self._dead_letter.send(rejected):
            r = item.record
            log.info(
                "record dead-lettered",
                extra={
                    "topic": r.topic,
                    "partition": r.partition,
                    "offset": r.offset,
                    "stage": item.failure.stage.value,
                    "error": item.failure.error_class,
                },
            )
            self.summary.dead_lettered[item.failure.stage.value] += 1
            self._finish([r])

    def _finish(self, records: Iterable[SourceRecord]) -> None:
        for r in records:
            tp = (r.topic, r.partition)
            epoch = self._tracker.epoch(tp)
            if epoch is not None:
                self._tracker.done(tp, r.offset, epoch)

    def _rewind_unfinished(self, partitions: set[TP]) -> None:
        for tp in partitions:
            offset = self._tracker.rewind(tp)
            if offset is not None:
                log.warning(
                    "rewinding to the first unfinished record",
                    extra={"topic": tp[0], "partition": tp[1], "offset": offset},
                )
                self._source.seek(tp, offset)

    def _commit(self) -> None:
        positions = self._tracker.to_commit()
        if not positions:
            return
        try:
            self._source.commit(positions)
        except KafkaException as exc:
            self._tracker.uncommit(positions)
            log.warning("commit failed; will retry", extra={"error": str(exc)})
            return
        self.summary.committed.update(positions)

    def _caught_up(self) -> bool:
        consumer = self._source.consumer
        if not self._assigned:
            return False
        tps = [TopicPartition(t, p) for t, p in sorted(self._assigned)]
        committed = {(c.topic, c.partition): c.offset for c in consumer.committed(tps, timeout=10)}
        for tp in tps:
            low, high = consumer.get_watermark_offsets(tp, timeout=10, cached=False)
            if high > low and committed.get((tp.topic, tp.partition), -1) < high:
                return False
        return True

    # -- rebalance callbacks (run inside consume) ---------------------------------------------

    def _on_assign(self, tps: list[TP]) -> None:
        for tp in tps:
            self._tracker.assign(tp)
            self._assigned.add(tp)

    def _on_revoke(self, tps: list[TP]) -> None:
        # Batches finish before consume() is called again, so nothing of these is in flight.
        self._commit()
        self._on_lost(tps)

    def _on_lost(self, tps: list[TP]) -> None:
        for tp in tps:
            self._tracker.revoke(tp)
            self._assigned.discard(tp)
