"""The poll loop: consume, decode and map, batch by session, hand calls to the senders, commit.

Everything that changes state runs on this one thread; the sending threads only report back. The
loop never sleeps and never blocks on a call: when too much is buffered it pauses the partitions
and keeps polling, so the group membership (`max.poll.interval.ms`) never lapses.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from typing import Any

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from consumer.batching import SessionBatcher
from consumer.deadletter import DeadLetterSink
from consumer.decode import Decoder
from consumer.delivery import Delivery
from consumer.health import Health
from consumer.kafkaconfig import KafkaErrorWatch, is_fatal
from consumer.mapping import Mapper, Skipped
from consumer.metrics import NS, Metrics
from consumer.offsets import OffsetTracker
from consumer.records import (
    Failure,
    MappedEvent,
    Rejected,
    SourceRecord,
    Stage,
    TransientError,
)
from consumer.registry import RegistryAccessDenied
from consumer.source import TP, Source, to_record

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tuning:
    batch_size: int = 500
    linger_s: float = 0.2
    max_buffered_records: int = 20_000
    commit_interval_s: float = 1.0
    shutdown_timeout_s: float = 30.0


@dataclass
class RunSummary:
    """What a run did, read back from the metrics (printed at exit and by the demo)."""

    consumed: int = 0
    sent_events: int = 0
    calls: int = 0
    retries: int = 0
    throttles: int = 0
    dead_lettered: Counter[str] = field(default_factory=Counter)
    committed: dict[TP, int] = field(default_factory=dict)

    @classmethod
    def of(cls, metrics: Metrics, committed: dict[TP, int]) -> RunSummary:
        stages = {
            stage.value: int(v)
            for stage in Stage
            if (v := metrics.value(f"{NS}_records_dead_lettered_total", stage=stage.value))
        }
        return cls(
            consumed=int(metrics.total(f"{NS}_records_consumed_total")),
            sent_events=int(metrics.total(f"{NS}_events_sent_total")),
            calls=int(metrics.value(f"{NS}_put_events_calls_total", outcome="accepted")),
            retries=int(metrics.total(f"{NS}_put_events_retries_total")),
            throttles=int(metrics.value(f"{NS}_put_events_calls_total", outcome="throttled")),
            dead_lettered=Counter(stages),
            committed=dict(committed),
        )

    def line(self) -> str:
        by_stage = ", ".join(f"{k}={v}" for k, v in sorted(self.dead_lettered.items())) or "none"
        return (
            f"consumed={self.consumed} sent={self.sent_events} calls={self.calls} "
            f"retries={self.retries} throttled={self.throttles} "
            f"dead_lettered={sum(self.dead_lettered.values())} ({by_stage}) "
            f"committed_offsets={sum(self.committed.values())} "
            f"over {len(self.committed)} partitions"
        )


class Pipeline:
    def __init__(
        self,
        consumer: Consumer,
        topics: tuple[str, ...],
        decoder: Decoder,
        mapper: Mapper,
        delivery: Delivery,
        dead_letter: DeadLetterSink,
        tuning: Tuning,
        metrics: Metrics | None = None,
        health: Health | None = None,
        kafka_errors: KafkaErrorWatch | None = None,
        origin: Callable[[SourceRecord], SourceRecord] | None = None,
    ) -> None:
        self._decoder, self._mapper = decoder, mapper
        self._delivery, self._dead_letter = delivery, dead_letter
        self._tuning = tuning
        self._tracker = OffsetTracker()
        self._batcher = SessionBatcher(tuning.linger_s)
        self._assigned: set[TP] = set()
        self._paused = False
        self._held: dict[TP, float] = {}  # partition -> when to fetch it again
        self._held_backoff: dict[TP, float] = {}
        self._steer = False  # fetch state changed: re-apply pauses
        self._fatal: Exception | None = None
        self._last_commit = time.monotonic()
        self._committed: dict[TP, int] = {}
        self._kafka_errors = kafka_errors or KafkaErrorWatch()
        #: Where a record came from, for mapping (a replay maps dead-letters as their originals).
        self._origin = origin
        self.metrics = metrics or Metrics()
        self.health = health or Health(stall_after_s=tuning.shutdown_timeout_s + 60)
        self._source = Source(consumer, topics, self._on_assign, self._on_revoke, self._on_lost)

    @property
    def summary(self) -> RunSummary:
        return RunSummary.of(self.metrics, self._committed)

    # -- the loop -----------------------------------------------------------------------------

    def run(self, stop: threading.Event, until_caught_up: bool = False) -> RunSummary:
        """Run until `stop` (or caught up), drain, commit; raise what was fatal."""
        try:
            while not stop.is_set() and self._fatal is None:
                consumed = self._step()
                if until_caught_up and not consumed and self._idle() and self._caught_up():
                    log.info("caught up with every assigned partition")
                    break
            self._drain(send_buffered=self._fatal is None)
        finally:
            self._commit()
        if self._fatal is not None:
            raise self._fatal
        return self.summary

    def close(self) -> None:
        """Leave the group promptly: partitions move without waiting for a session timeout."""
        self._delivery.close()
        self._dead_letter.close()
        self._decoder.close()
        self._source.consumer.close()

    def _step(self) -> int:
        saturated = self._paused or self._delivery.capacity() == 0
        calls_out = self._delivery.in_flight > 0
        busy = self._tracker.unfinished > 0
        # With calls out, wait on their results rather than on the fetch: a busy session's next
        # call leaves as soon as its last one is back, not a fetch timeout later.
        fetch_wait = 0.0 if saturated or calls_out else (0.02 if busy else 0.5)
        messages = self._source.consumer.consume(self._tuning.batch_size, timeout=fetch_wait)
        self._ingest(messages)
        self._handle_completions(0.02 if saturated or (calls_out and not messages) else 0.0)
        self._dead_letter.poll(0)
        self._fatal = self._fatal or self._dead_letter.fatal or self._kafka_errors.fatal
        self._submit(flush=False)
        self._fetch_control()
        if time.monotonic() - self._last_commit >= self._tuning.commit_interval_s:
            self._commit()
        self._observe()
        return len(messages)

    def _observe(self) -> None:
        m = self.metrics
        m.in_flight.set(self._delivery.in_flight)
        m.in_flight_limit.set(self._delivery.limit)
        m.unfinished.set(self._tracker.unfinished)
        self.health.beat()

    def _ingest(self, messages: list[Message]) -> None:
        now = time.monotonic()
        consumed: Counter[str] = Counter()
        for message in messages:
            error = message.error()
            if error is not None:
                if is_fatal(error):
                    raise KafkaException(error)
                log.warning("consumer error", extra={"error": str(error)})
                continue
            tp = (message.topic() or "", message.partition() or 0)
            epoch = self._tracker.epoch(tp)
            if epoch is None or tp in self._held:
                continue  # revoked, or held back: fetched again later
            record = to_record(message, epoch)
            try:
                value = self._decoder.decode(record.value)
            except RegistryAccessDenied as exc:  # won't fix itself: stop, like AccessDenied
                self._fatal = self._fatal or exc
                self._hold(tp, record.offset, exc)
                continue
            except TransientError as exc:
                self._hold(tp, record.offset, exc)
                continue
            if self._held_backoff:
                self._held_backoff.pop(tp, None)  # the dependency is back for this partition
            self._tracker.track(tp, record.offset)
            consumed[record.topic] += 1
            outcome = value if isinstance(value, Failure) else self._map(record, value)
            if isinstance(outcome, Failure):
                self._send_to_dead_letter(Rejected(record, outcome))
            elif isinstance(outcome, Skipped):  # filtered by the mapping: done, not sent
                self.metrics.filtered.inc()
                self._finish(record)
            else:
                self._batcher.add(outcome, now)
        for topic, count in consumed.items():  # one metric update per topic, not per record
            self.metrics.consumed.labels(topic).inc(count)

    def _map(self, record: SourceRecord, value: dict[str, Any]) -> MappedEvent | Failure | Skipped:
        if self._origin is None:
            return self._mapper.map(record, value)
        outcome = self._mapper.map(self._origin(record), value)
        # offsets are tracked where the record was read, whatever it was mapped as
        return replace(outcome, record=record) if isinstance(outcome, MappedEvent) else outcome

    def _submit(self, flush: bool) -> None:
        for call in self._batcher.ready(time.monotonic(), self._delivery.capacity(), flush):
            self._delivery.submit(call)

    def _handle_completions(self, timeout_s: float) -> None:
        for completion in self._delivery.completions(timeout_s):
            self._batcher.complete(completion.call.session)
            if completion.fatal is not None:
                self._fatal = self._fatal or completion.fatal
                continue
            result = completion.result
            assert result is not None
            self.metrics.sent.inc(len(result.accepted))
            for event in result.accepted:
                self._finish(event.record)
            for event, failure in result.rejected:
                self._send_to_dead_letter(Rejected(event.record, failure))
            still_ours = [m for m in result.unsent if self._owned(m.record)]
            if still_ours and self._fatal is None:
                self._batcher.retry(still_ours, time.monotonic())

    def _send_to_dead_letter(self, item: Rejected) -> None:
        self._dead_letter.send(item, self._dead_lettered)

    def _dead_lettered(self, item: Rejected) -> None:
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
        self.metrics.dead_lettered.labels(item.failure.stage.value).inc()
        self._finish(r)

    def _finish(self, record: SourceRecord) -> None:
        self._tracker.done((record.topic, record.partition), record.offset, record.epoch)

    def _owned(self, record: SourceRecord) -> bool:
        return self._tracker.epoch((record.topic, record.partition)) == record.epoch

    def _hold(self, tp: TP, offset: int, exc: Exception) -> None:
        """Stop taking `tp` in at `offset` and fetch it again after a backoff (doubling to 30 s)."""
        backoff = min(30.0, 2 * self._held_backoff.get(tp, 0.5))
        self._held_backoff[tp] = backoff
        self._held[tp] = time.monotonic() + backoff
        self._source.rewind(tp, offset)
        self._steer = True
        log.warning(
            "holding a partition back: a dependency is unavailable",
            extra={
                "topic": tp[0],
                "partition": tp[1],
                "offset": offset,
                "error": str(exc),
                "retry_in_s": backoff,
            },
        )

    def _fetch_control(self) -> None:
        """Pause on a full buffer (resume at half), and release held partitions when due."""
        unfinished = self._tracker.unfinished
        if not self._paused and unfinished >= self._tuning.max_buffered_records:
            log.info("buffer full, pausing fetches", extra={"unfinished": unfinished})
            self._paused, self._steer = True, True
        elif self._paused and unfinished <= self._tuning.max_buffered_records // 2:
            self._paused, self._steer = False, True
        now = time.monotonic()
        for tp in [tp for tp, until in self._held.items() if until <= now]:
            del self._held[tp]
            self._steer = True
        if self._steer:
            self._source.steer(self._paused, self._held)
            self.metrics.paused.set(1 if self._paused else 0)
            self._steer = False

    def _commit(self) -> None:
        self._last_commit = time.monotonic()
        positions = self._tracker.to_commit()
        if not positions:
            return
        started = time.monotonic()
        try:
            self._source.commit(positions)
        except KafkaException as exc:
            self._tracker.uncommit(positions)
            self.metrics.commit_failures.inc()
            log.warning("commit failed; will retry", extra={"error": str(exc)})
            return
        self.metrics.commit_seconds.observe(time.monotonic() - started)
        self._committed.update(positions)

    def _wait_for(
        self, partitions: Collection[TP] | None, timeout_s: float, send_buffered: bool = False
    ) -> None:
        """Let calls and dead-letter produces (of these partitions) finish, bounded; then cancel."""
        deadline = time.monotonic() + timeout_s

        def busy() -> bool:
            if partitions is not None:
                return bool(
                    self._delivery.in_flight_for(partitions)
                    or self._dead_letter.outstanding_for(partitions)
                )
            waiting = len(self._batcher) if send_buffered and self._fatal is None else 0
            return bool(self._delivery.in_flight or self._dead_letter.outstanding or waiting)

        while busy() and time.monotonic() < deadline:
            if send_buffered and self._fatal is None:
                self._submit(flush=True)
            self._handle_completions(0.02)
            self._dead_letter.poll(0)
        self._delivery.cancel(partitions)

    def _drain(self, send_buffered: bool) -> None:
        """Shutdown: stop fetching, send what is buffered, wait (bounded) for it, then commit."""
        self._source.steer(stop_all=True)
        self._wait_for(None, self._tuning.shutdown_timeout_s, send_buffered)
        self._commit()

    def _idle(self) -> bool:
        return self._tracker.unfinished == 0 and self._delivery.in_flight == 0

    def _caught_up(self) -> bool:
        self._commit()
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

    # -- rebalance callbacks (they run inside consume) ----------------------------------------

    def _on_assign(self, tps: list[TP]) -> None:
        for tp in tps:
            self._tracker.assign(tp)
            self._assigned.add(tp)
        self._steer = True  # new partitions start fetching: pause them if we are paused
        self._rebalanced("assigned")

    def _on_revoke(self, tps: list[TP]) -> None:
        revoked = set(tps)
        self._batcher.drop(revoked)
        self._wait_for(revoked, self._tuning.shutdown_timeout_s)
        self._batcher.drop(revoked)  # events of cancelled calls that came back while waiting
        self._commit()
        self._forget(revoked)
        self._rebalanced("revoked")

    def _on_lost(self, tps: list[TP]) -> None:
        lost = set(tps)
        self._batcher.drop(lost)
        self._delivery.cancel(lost)
        self._forget(lost)
        self._rebalanced("lost")

    def _rebalanced(self, event: str) -> None:
        self.metrics.rebalances.labels(event).inc()
        self.health.assigned = len(self._assigned)

    def _forget(self, tps: set[TP]) -> None:
        for tp in tps:
            self._tracker.revoke(tp)
            self._assigned.discard(tp)
            self._held.pop(tp, None)
            self._held_backoff.pop(tp, None)
