"""The poll loop: the one thread that moves records from Kafka to Personalize and commits them.

Every state change (offsets, batches, dead-letters) happens on this thread; the sender threads and
the dead-letter producer only report back. The loop never sleeps and never blocks on a call: when
too much is unfinished the source pauses its partitions and the loop keeps polling, so the group
membership (`max.poll.interval.ms`) never lapses.

One turn:
1. consume a batch (the source applies pauses and holds, and runs rebalance callbacks in there);
2. transform each record: an event joins its session's batch, a failure goes to the dead-letter
   producer, a filtered record is done; a record that can't be processed yet holds its partition;
3. collect finished calls: accepted events are done, rejected ones go to the dead-letter producer,
   events of cancelled calls go back to their session;
4. serve the dead-letter producer: a copy the broker acknowledged makes its record done;
5. hand the calls that are ready to the sender, as many as it has room for;
6. backpressure: the source pauses fetching while too many records are unfinished (one very
   busy session's waiting events do not hold the others back once they have room again);
7. commit, every COMMIT_INTERVAL_MS, each partition's longest done prefix.

Done means accepted, or dead-lettered and acknowledged, or filtered; nothing else is committed.
On stop or a fatal error: fetching stops, what is in flight finishes (bounded by
SHUTDOWN_TIMEOUT_S), what is done is committed; then `run` returns, or raises the fatal error.
The consumer is still polled while it drains, so a rebalance that starts meanwhile (a rolling
deploy's new pod joining) is served at once instead of waiting for the drain to end.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass

from consumer.commit import Committer, OffsetTracker
from consumer.deadletter import DeadLetterSink
from consumer.errors import FatalError, TransientError
from consumer.ops.health import Health
from consumer.ops.metrics import Metrics
from consumer.ops.summary import RunSummary
from consumer.records import TOMBSTONE, TP, Failure, MappedEvent, Rejected, SourceRecord
from consumer.send import Sender, SessionBatcher
from consumer.source import Source
from consumer.transform import Transform

log = logging.getLogger(__name__)

#: Records taken between two looks at finished calls (~5 ms of work).
_SLICE = 64
#: How often the gauges and the heartbeat are updated (Prometheus scrapes every few seconds).
_OBSERVE_S = 0.1


@dataclass(frozen=True)
class Tuning:
    """The loop's timings, from the settings (BATCH_LINGER_MS, COMMIT_INTERVAL_MS, ...)."""

    linger_s: float
    commit_interval_s: float
    shutdown_timeout_s: float


class Pipeline:
    def __init__(
        self,
        source: Source,
        transform: Transform,
        sender: Sender,
        dead_letter: DeadLetterSink,
        tuning: Tuning,
        metrics: Metrics,
        health: Health,
    ) -> None:
        self._source, self._transform = source, transform
        self._sender, self._dead_letter = sender, dead_letter
        self._tuning = tuning
        self.metrics, self.health = metrics, health
        self._tracker = OffsetTracker()
        self._committer = Committer(self._tracker, source.commit, tuning.commit_interval_s, metrics)
        self._batcher = SessionBatcher(tuning.linger_s)
        self._fatal: FatalError | None = None
        self._closing = False
        self._drain_deadline: float | None = None  # set while draining: no wait outlasts it
        self._observed_at = -_OBSERVE_S
        source.subscribe(self)

    @property
    def summary(self) -> RunSummary:
        return RunSummary.of(self.metrics, self._committer.committed)

    def run(self, stop: threading.Event, until_caught_up: bool = False) -> RunSummary:
        """Turn until `stop`, a fatal error or (`until_caught_up`) the end; drain; commit."""
        try:
            while not stop.is_set() and self._fatal is None:
                consumed = self._turn()
                if until_caught_up and not consumed and self._idle() and self._caught_up():
                    log.info("caught up with every assigned partition")
                    break
            self._drain()
        finally:
            self._committer.commit()
            self._observe(force=True)  # the gauges as the run ends (the progress bar reads them)
        if self._fatal is not None:
            raise self._fatal
        return self.summary

    def close(self) -> None:
        """Leave the group and release every client; safe after any failure, and idempotent.

        The consumer goes first: closing it revokes its partitions, and that commit must still
        find the loop's state. A failure here is logged; it never hides why the run ended.
        """
        if self._closing:
            return
        self._closing = True
        closers: tuple[tuple[str, Callable[[], None]], ...] = (
            ("the Kafka consumer", self._source.close),
            ("the PutEvents senders", self._sender.close),
            ("the dead-letter producer", self._dead_letter.close),
            ("the decoder", self._transform.close),
        )
        for what, close in closers:
            try:
                close()
            except Exception as exc:  # shutting down: report it, and close the rest
                log.warning("error while closing", extra={"closing": what, "error": repr(exc)})

    def _turn(self) -> int:
        saturated = self._source.paused or self._sender.capacity() == 0
        calls_out = self._sender.in_flight > 0
        # With calls out, wait on their results rather than on the fetch: a busy session's next
        # call leaves as soon as its last one is back, not a fetch timeout later.
        fetch_wait = 0.0 if saturated or calls_out else (0.02 if self._tracker.unfinished else 0.5)
        records = self._source.consume(fetch_wait)  # 1
        for start in range(0, len(records), _SLICE):
            if start:  # a busy session's next call waits on this loop: don't keep it long
                self._collect(0.0)
                self._submit(flush=False)
            self._take(records[start : start + _SLICE])  # 2
        self._collect(0.02 if saturated or (calls_out and not records) else 0.0)  # 3
        self._dead_letter.poll(0)  # 4
        self._fatal = self._fatal or self._dead_letter.fatal or self._source.fatal
        self._submit(flush=False)  # 5
        self._source.backpressure(self._tracker.unfinished, self._batcher.busiest)  # 6
        self._committer.maybe_commit()  # 7
        self._observe()
        return len(records)

    def _take(self, records: list[SourceRecord]) -> None:
        now = time.monotonic()
        source, tracker, batcher = self._source, self._tracker, self._batcher
        consumed: Counter[str] = Counter()
        for record in records:
            tp = (record.topic, record.partition)
            if source.held(tp):
                continue  # an earlier record of this batch could not be processed
            try:
                outcome = self._transform(record)
            except TransientError as exc:
                source.hold(record, exc)
                continue
            except FatalError as exc:  # not this record's fault: leave it unfinished, and stop
                self._fatal = self._fatal or exc
                source.hold(record, exc)
                continue
            if source.holding:
                source.recovered(tp)
            tracker.track(tp, record.offset)
            consumed[record.topic] += 1
            if isinstance(outcome, MappedEvent):
                batcher.add(outcome, now)
            elif isinstance(outcome, Failure):
                self._dead_letter.send(Rejected(record, outcome), self._dead_lettered)
            else:  # filtered by the mapping, or a catalog tombstone: done, never sent
                if outcome.reason == TOMBSTONE:
                    self.metrics.skipped.labels(TOMBSTONE).inc()
                else:
                    self.metrics.filtered.inc()
                self._done(record)
        for topic, count in consumed.items():  # one metric update per topic, not per record
            self.metrics.consumed.labels(topic).inc(count)

    def _collect(self, timeout_s: float) -> None:
        for completion in self._sender.completions(timeout_s):
            self._batcher.complete(completion.call.session)
            if completion.fatal is not None:
                self._fatal = self._fatal or completion.fatal
                continue
            result = completion.result
            assert result is not None
            self.metrics.operation(completion.call.session.operation).sent.inc(len(result.accepted))
            for event in result.accepted:
                self._done(event.record)
            if result.superseded:
                self.metrics.skipped.labels("superseded").inc(len(result.superseded))
                for event in result.superseded:
                    self._done(event.record)
            for event, failure in result.rejected:
                self._dead_letter.send(Rejected(event.record, failure), self._dead_lettered)
            unsent = [m for m in result.unsent if self._owned(m.record)]
            if unsent and self._fatal is None:
                self._batcher.retry(unsent, time.monotonic())

    def _submit(self, flush: bool) -> None:
        for call in self._batcher.ready(time.monotonic(), self._sender.capacity(), flush):
            self._sender.submit(call)

    def _dead_lettered(self, item: Rejected) -> None:
        self.metrics.dead_lettered.labels(item.failure.stage.value).inc()
        self._done(item.record)

    def _done(self, record: SourceRecord) -> None:
        self._tracker.done((record.topic, record.partition), record.offset, record.epoch)

    def _owned(self, record: SourceRecord) -> bool:
        return self._tracker.epoch((record.topic, record.partition)) == record.epoch

    def _observe(self, force: bool = False) -> None:
        """Gauges and the heartbeat, at most every `_OBSERVE_S`. Every turn, they were 2.4% of
        the poll loop's CPU in the sparse loop benchmark, where a turn hands back about two
        calls."""
        now = time.monotonic()
        if now - self._observed_at < _OBSERVE_S and not force:
            return
        self._observed_at = now
        m = self.metrics
        m.in_flight.set(self._sender.in_flight)
        m.in_flight_limit.set(self._sender.limit)
        m.unfinished.set(self._tracker.unfinished)
        m.paused.set(1 if self._source.paused else 0)
        self.health.assigned = self._source.assigned
        self.health.beat()

    def _settle(
        self, tps: Collection[TP] | None, send_buffered: bool = False, serve: bool = False
    ) -> None:
        """Let calls and dead-letter copies (of `tps`, or all) finish, bounded; cancel the rest.

        `serve` (the drain, never a revoke: librdkafka runs those inside `consume`) keeps polling
        the consumer meanwhile. Its partitions are paused, so it hands back nothing but the
        group's callbacks; a record that still comes (a partition assigned since) is left
        unfinished, for its next owner to read.
        """
        deadline = time.monotonic() + self._tuning.shutdown_timeout_s
        if self._drain_deadline is not None:  # a revoke while draining: within the drain's bound
            deadline = min(deadline, self._drain_deadline)
        while time.monotonic() < deadline:
            flushing = send_buffered and self._fatal is None
            if tps is not None:
                busy = self._sender.in_flight_for(tps) or self._dead_letter.outstanding_for(tps)
            else:
                waiting = len(self._batcher) if flushing else 0
                busy = self._sender.in_flight or self._dead_letter.outstanding or waiting
            if not busy:
                break
            if flushing:
                self._submit(flush=True)
            if serve:
                self._source.consume(0.0)
            self._collect(0.02)
            self._dead_letter.poll(0)
            self._fatal = self._fatal or self._dead_letter.fatal
        self._sender.cancel(tps)

    def _drain(self) -> None:
        """Shutdown: stop fetching, send what is buffered (unless fatal), wait for it, commit."""
        self._source.stop_fetching()
        self._drain_deadline = time.monotonic() + self._tuning.shutdown_timeout_s
        self._settle(None, send_buffered=True, serve=True)
        self._committer.commit()

    def _idle(self) -> bool:
        return self._tracker.unfinished == 0 and self._sender.in_flight == 0

    def _caught_up(self) -> bool:
        self._committer.commit()
        return self._source.caught_up()

    # -- rebalance listener (called from inside `Source.consume`) ------------------------------

    def on_assigned(self, assigned: dict[TP, int]) -> None:
        for tp, epoch in assigned.items():
            self._tracker.assign(tp, epoch)
        self.metrics.rebalances.labels("assigned").inc()

    def on_revoked(self, revoked: list[TP]) -> None:
        gone = set(revoked)
        self._batcher.drop(gone)
        if not self._closing:  # closing, the other clients may be gone: commit what is done
            self._settle(gone)
            self._batcher.drop(gone)  # events of cancelled calls that came back while waiting
        self._committer.commit()
        self._forget(gone)
        self.metrics.rebalances.labels("revoked").inc()

    def on_lost(self, lost: list[TP]) -> None:
        gone = set(lost)
        self._batcher.drop(gone)
        if not self._closing:
            self._sender.cancel(gone)
        self._forget(gone)
        self.metrics.rebalances.labels("lost").inc()

    def _forget(self, tps: set[TP]) -> None:
        for tp in tps:
            self._tracker.revoke(tp)
