"""The Kafka consumer wrapped as the pipeline's source: records in, pauses and commits out.

Auto-commit and the automatic offset store are off: an offset is committed only when the offset
tracker says every record below it is done (pitfall 1). Assignment is cooperative-sticky, so a
rebalance moves only the partitions that must move.

Fetching is steered here, in one place, so the poll loop never sleeps (pitfall 3):
- backpressure pauses every partition while too many records are unfinished, and resumes them
  as `budget.py` says;
- a hold seeks one partition back to a record that could not be processed yet (the Schema
  Registry is down) and pauses it for a backoff that doubles up to 30 s;
- a drain pauses everything for good.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from consumer.errors import FatalError, KafkaRefused, TransientError
from consumer.kafkaclient import KafkaErrorWatch, is_fatal
from consumer.records import TP, SourceRecord
from consumer.source import RebalanceListener
from consumer.source.budget import Budget

log = logging.getLogger(__name__)

MAX_HOLD_S = 30.0


def to_record(message: Message, epoch: int = 0) -> SourceRecord:
    """A consumed message as the stages see it: its bytes kept for the dead-letter topic."""
    topic, partition = message.topic(), message.partition()
    assert topic is not None and partition is not None
    return _record(message, topic, partition, epoch)


_new = tuple.__new__


def _record(message: Message, topic: str, partition: int, epoch: int) -> SourceRecord:
    """`to_record` once the caller has read the topic and partition (the poll loop has)."""
    _kind, timestamp = message.timestamp()
    headers = message.headers() or ()  # (name, bytes) pairs, as librdkafka returns them
    # tuple.__new__, not SourceRecord(...): a NamedTuple's __new__ is one more Python call.
    return _new(
        SourceRecord,
        (
            topic,
            partition,
            message.offset(),
            message.key(),
            message.value(),
            list(headers.items()) if isinstance(headers, dict) else headers,
            timestamp if timestamp > 0 else None,
            epoch,
        ),
    )


def records_left(
    config: dict[str, Any], topics: Iterable[str], timeout_s: float = 10.0
) -> int | None:
    """Records past the committed offsets of `config`'s group on every partition of `topics`:
    what an `--until-caught-up` run has ahead of it (the whole group's, shown by its progress
    bar). None when the cluster doesn't say in time: the bar then shows no total."""
    reader = Consumer(config | {"enable.auto.commit": False})
    from_end = config.get("auto.offset.reset") == "latest"
    try:
        tps = [
            TopicPartition(topic, p)
            for topic in topics
            for p in reader.list_topics(topic, timeout=timeout_s).topics[topic].partitions
        ]
        left = 0
        for tp in reader.committed(tps, timeout=timeout_s):
            low, high = reader.get_watermark_offsets(tp, timeout=timeout_s)
            start = tp.offset if tp.offset >= 0 else (high if from_end else low)
            left += max(0, high - max(start, low))
        return left
    except (KafkaException, KeyError):
        return None
    finally:
        reader.close()


class KafkaSource:
    """A subscribed confluent `Consumer`, with assignment epochs, holds and backpressure."""

    def __init__(
        self,
        consumer: Consumer,
        topics: tuple[str, ...],
        batch_size: int,
        max_buffered: int,
        errors: KafkaErrorWatch,
    ) -> None:
        self.consumer = consumer
        self._topics = topics
        self._batch_size = batch_size
        self._errors = errors
        self._listener: RebalanceListener | None = None
        self._fatal: FatalError | None = None
        self._epochs: dict[TP, int] = {}  # assigned partition -> its epoch
        self._next_epoch = 0
        self._held: dict[TP, float] = {}  # partition -> when to fetch it again
        self._backoff: dict[TP, float] = {}  # partition -> its last hold's backoff
        self._budget = Budget(max_buffered)
        self._stopped = False  # draining: nothing more is fetched
        self._paused: set[TP] = set()
        self._steer = False  # what should be paused changed
        self._closed = False

    @property
    def assigned(self) -> int:
        return len(self._epochs)

    @property
    def fatal(self) -> FatalError | None:
        return self._fatal or self._errors.fatal

    def subscribe(self, listener: RebalanceListener) -> None:
        self._listener = listener
        self.consumer.subscribe(
            list(self._topics),
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )

    def consume(self, timeout_s: float) -> list[SourceRecord]:
        """The next batch of records of assigned, unheld partitions (may be empty)."""
        self._release_due_holds()
        if self._steer:
            self._apply_pauses()
        records = []
        epochs, held = self._epochs, self._held
        for message in self.consumer.consume(self._batch_size, timeout=timeout_s):
            error = message.error()
            if error is not None:
                if is_fatal(error):
                    self._fatal = self._fatal or KafkaRefused(f"Kafka refused us: {error.str()}")
                else:
                    log.warning("consumer error", extra={"error": str(error)})
                continue
            topic, partition = message.topic(), message.partition()
            tp = (topic, partition)
            epoch = epochs.get(tp)  # type: ignore[arg-type]  # set on any message without an error
            if epoch is None or tp in held:
                continue  # revoked, or held back: fetched again later
            records.append(_record(message, topic, partition, epoch))  # type: ignore[arg-type]
        return records

    def held(self, tp: TP) -> bool:
        return tp in self._held

    @property
    def holding(self) -> bool:
        """Whether any partition is held or backing off (so `recovered` has work to do)."""
        return bool(self._backoff)

    def hold(self, record: SourceRecord, cause: Exception) -> None:
        """Fetch `record` again after a backoff: its partition stops here (doubling to 30 s)."""
        tp = (record.topic, record.partition)
        backoff = min(MAX_HOLD_S, 2 * self._backoff.get(tp, 0.5))
        self._backoff[tp] = backoff
        self._held[tp] = time.monotonic() + backoff
        self.consumer.seek(TopicPartition(tp[0], tp[1], record.offset))
        self._steer = True
        log.warning(
            "holding a partition back: a dependency is unavailable",
            extra={
                "topic": tp[0],
                "partition": tp[1],
                "offset": record.offset,
                "error": str(cause),
                "retry_in_s": backoff,
            },
        )

    def recovered(self, tp: TP) -> None:
        """A record of `tp` went through: its next hold starts from the shortest backoff."""
        self._backoff.pop(tp, None)

    def backpressure(self, unfinished: int, busiest: int) -> None:
        """Pause or resume every partition as the budget says (`budget.py`)."""
        if self._budget.update(unfinished, busiest):
            self._steer = True
            if self._budget.full:
                log.info("buffer full, pausing fetches", extra={"unfinished": unfinished})

    @property
    def paused(self) -> bool:
        return self._budget.full

    def stop_fetching(self) -> None:
        """Draining: pause every partition and keep them paused."""
        self._stopped = self._steer = True
        self._apply_pauses()

    def commit(self, positions: dict[TP, int]) -> None:
        """Synchronous commit; `TransientError` when the group can't take it right now."""
        offsets = [TopicPartition(t, p, o) for (t, p), o in positions.items()]
        try:
            self.consumer.commit(offsets=offsets, asynchronous=False)
        except (KafkaException, RuntimeError) as exc:  # RuntimeError: the consumer is closed
            raise TransientError(str(exc)) from None

    def caught_up(self) -> bool:
        """Every assigned partition committed up to its end (for `--until-caught-up`)."""
        if not self._epochs:
            return False
        tps = [TopicPartition(t, p) for t, p in sorted(self._epochs)]
        committed = {
            (c.topic, c.partition): c.offset for c in self.consumer.committed(tps, timeout=10)
        }
        for tp in tps:
            low, high = self.consumer.get_watermark_offsets(tp, timeout=10, cached=False)
            if high > low and committed.get((tp.topic, tp.partition), -1) < high:
                return False
        return True

    def close(self) -> None:
        """Leave the group (partitions move at once, not after a session timeout); idempotent."""
        if self._closed:
            return
        self._closed = True
        self.consumer.close()

    # -- fetch steering ------------------------------------------------------------------------

    def _release_due_holds(self) -> None:
        if self._held:
            now = time.monotonic()
            for tp in [tp for tp, until in self._held.items() if until <= now]:
                del self._held[tp]
                self._steer = True

    def _apply_pauses(self) -> None:
        """Fetch exactly the assigned partitions that should be fetched now."""
        self._steer = False
        assigned = set(self._epochs)
        want = assigned if self._stopped or self._budget.full else assigned & set(self._held)
        pause, resume = want - self._paused, (self._paused & assigned) - want
        if pause:
            self.consumer.pause([TopicPartition(t, p) for t, p in pause])
        if resume:
            self.consumer.resume([TopicPartition(t, p) for t, p in resume])
        self._paused = want

    # -- rebalance callbacks (librdkafka runs them inside `consume`) ---------------------------

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        tps = [(p.topic, p.partition) for p in partitions]
        log.info("partitions assigned", extra={"partitions": _fmt(tps)})
        assigned = {}
        for tp in tps:
            self._next_epoch += 1
            assigned[tp] = self._epochs[tp] = self._next_epoch
        self._steer = True  # new partitions start fetching: pause them if we are paused
        if self._listener is not None:
            self._listener.on_assigned(assigned)

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        tps = [(p.topic, p.partition) for p in partitions]
        log.info("partitions revoked", extra={"partitions": _fmt(tps)})
        if self._listener is not None:
            self._listener.on_revoked(tps)  # it may still commit them: they are ours until now
        self._forget(tps)

    def _on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        tps = [(p.topic, p.partition) for p in partitions]
        log.warning(
            "partitions lost; their unfinished work is dropped", extra={"partitions": _fmt(tps)}
        )
        if self._listener is not None:
            self._listener.on_lost(tps)
        self._forget(tps)

    def _forget(self, tps: Iterable[TP]) -> None:
        for tp in tps:
            self._epochs.pop(tp, None)
            self._held.pop(tp, None)
            self._backoff.pop(tp, None)
            self._paused.discard(tp)


def _fmt(tps: list[TP]) -> str:
    return ",".join(f"{t}[{p}]" for t, p in tps)
