"""In-memory stand-ins for the loop's three I/O parts: the Kafka source, the PutEvents sender and
the dead-letter producer. Deterministic and fast: the loop's unit tests need no broker.

Each keeps what a test wants to look at (commits, holds, calls, dead-letters) and lets the test
decide when things finish and in which order.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from consumer.deadletter.producer import OnAcked
from consumer.errors import FatalError
from consumer.records import TP, Failure, MappedEvent, Rejected, SourceRecord, Stage
from consumer.send import Call, Completion, SendResult
from consumer.source import RebalanceListener
from consumer.source.budget import Budget


@dataclass
class _Partition:
    values: list[bytes]
    position: int = 0  # next offset to fetch
    epoch: int = 0  # 0: not assigned


class FakeSource:
    """Partitions as in-memory logs; `consume` returns what a fetch would, respecting pauses.

    `hold` seeks back like the real source; a held partition is fetched again after
    `hold_turns` calls of `consume`. `on_consume` runs inside `consume`, where librdkafka runs
    rebalance callbacks, so a test can revoke or assign partitions mid-run.
    """

    def __init__(self, logs: dict[TP, list[bytes]], batch_size: int = 500) -> None:
        self.partitions = {tp: _Partition(values) for tp, values in logs.items()}
        self.batch_size = batch_size
        self.listener: RebalanceListener | None = None
        self.commits: list[dict[TP, int]] = []
        self.holds: list[tuple[TP, int]] = []
        self.fatal: FatalError | None = None
        self.budget = Budget(1_000_000)  # the real policy: the loop's tests exercise it
        self.on_consume: Callable[[int], None] | None = None
        self.hold_turns = 2
        self.closed = False
        self._held: dict[TP, int] = {}  # partition -> turns left
        self._backoff: set[TP] = set()
        self._stopped = False
        self._epoch = 0
        self._turns = 0

    # -- what tests do ------------------------------------------------------------------------

    def assign(self, *tps: TP) -> None:
        assigned = {}
        for tp in tps:
            self._epoch += 1
            self.partitions[tp].epoch = assigned[tp] = self._epoch
        assert self.listener is not None
        self.listener.on_assigned(assigned)

    def revoke(self, *tps: TP) -> None:
        assert self.listener is not None
        self.listener.on_revoked(list(tps))
        for tp in tps:
            self.partitions[tp].epoch = 0
            self.partitions[tp].position = self.committed(tp)  # where the next owner starts
            self._held.pop(tp, None)

    def committed(self, tp: TP) -> int:
        return max((c[tp] for c in self.commits if tp in c), default=0)

    # -- the Source protocol ------------------------------------------------------------------

    @property
    def assigned(self) -> int:
        return sum(1 for p in self.partitions.values() if p.epoch)

    @property
    def holding(self) -> bool:
        return bool(self._backoff)

    @property
    def paused(self) -> bool:
        return self.budget.full

    def subscribe(self, listener: RebalanceListener) -> None:
        self.listener = listener

    def consume(self, timeout_s: float) -> list[SourceRecord]:
        self._turns += 1
        if self.on_consume is not None:
            self.on_consume(self._turns)
        for tp in list(self._held):
            self._held[tp] -= 1
            if self._held[tp] <= 0:
                del self._held[tp]
        if self.budget.full or self._stopped:
            return []
        records: list[SourceRecord] = []
        for tp, p in self.partitions.items():
            while p.epoch and tp not in self._held and p.position < len(p.values):
                if len(records) >= self.batch_size:
                    return records
                value = p.values[p.position]
                records.append(SourceRecord(tp[0], tp[1], p.position, b"k", value, [], 1, p.epoch))
                p.position += 1
        return records

    def held(self, tp: TP) -> bool:
        return tp in self._held

    def hold(self, record: SourceRecord, cause: Exception) -> None:
        tp = (record.topic, record.partition)
        self.holds.append((tp, record.offset))
        self._held[tp] = self.hold_turns
        self._backoff.add(tp)
        self.partitions[tp].position = record.offset

    def recovered(self, tp: TP) -> None:
        self._backoff.discard(tp)

    def backpressure(self, unfinished: int, busiest: int) -> None:
        self.budget.update(unfinished, busiest)

    def stop_fetching(self) -> None:
        self._stopped = True

    def commit(self, positions: dict[TP, int]) -> None:
        self.commits.append(dict(positions))

    def caught_up(self) -> bool:
        return all(
            self.committed(tp) == len(p.values) for tp, p in self.partitions.items() if p.epoch
        )

    def close(self) -> None:
        self.closed = True
        assigned = [tp for tp, p in self.partitions.items() if p.epoch]
        if assigned and self.listener is not None:
            self.revoke(*assigned)  # as librdkafka does when a subscribed consumer closes


@dataclass
class FakeSender:
    """Calls stay in flight until the test (or `auto`) finishes them.

    `auto`: "fifo" finishes every call at the next `completions`, in submission order; "lifo" in
    reverse order; None leaves them until `finish`.
    """

    auto: str | None = "fifo"
    limit: int = 32
    submitted: list[Call] = field(default_factory=list)
    cancelled: list[Call] = field(default_factory=list)
    rejects: dict[str, str] = field(default_factory=dict)  # eventId -> reason
    fatal: FatalError | None = None
    _in_flight: list[Call] = field(default_factory=list)
    _done: list[Completion] = field(default_factory=list)

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def capacity(self) -> int:
        return max(0, self.limit - len(self._in_flight))

    def submit(self, call: Call) -> None:
        self.submitted.append(call)
        self._in_flight.append(call)

    def finish(self, call: Call, cancelled: bool = False) -> None:
        """The call comes back: accepted (but for `rejects`), or unsent if cancelled."""
        self._in_flight.remove(call)
        if cancelled:
            self._done.append(Completion(call, SendResult(unsent=list(call.events))))
        elif self.fatal is not None:
            self._done.append(Completion(call, None, self.fatal))
        else:
            result = SendResult()
            for event in call.events:
                reason = self.rejects.get(event.event["eventId"])
                if reason is None:
                    result.accepted.append(event)
                else:
                    result.rejected.append((event, _failure(reason)))
            self._done.append(Completion(call, result))

    def completions(self, timeout_s: float = 0.0) -> list[Completion]:
        if self.auto is not None:
            order = self._in_flight if self.auto == "fifo" else self._in_flight[::-1]
            for call in list(order):
                self.finish(call)
        done, self._done = self._done, []
        return done

    def in_flight_for(self, partitions: Collection[TP]) -> int:
        return sum(1 for call in self._in_flight if _partitions(call) & set(partitions))

    def cancel(self, partitions: Collection[TP] | None = None) -> None:
        for call in list(self._in_flight):
            if partitions is None or _partitions(call) & set(partitions):
                self.cancelled.append(call)
                self.finish(call, cancelled=True)

    def close(self) -> None:
        self.cancel()


@dataclass
class FakeDeadLetter:
    """Copies are acknowledged at the next `poll` (`auto_ack`), or when the test says."""

    auto_ack: bool = True
    refuse: FatalError | None = None
    parked: list[Rejected] = field(default_factory=list)
    fatal: FatalError | None = None
    _pending: list[tuple[Rejected, OnAcked]] = field(default_factory=list)

    @property
    def outstanding(self) -> int:
        return len(self._pending)

    def outstanding_for(self, partitions: Collection[TP]) -> int:
        tps = set(partitions)
        return sum(1 for item, _ in self._pending if _tp(item.record) in tps)

    def send(self, item: Rejected, on_acked: OnAcked) -> None:
        if self.refuse is not None:
            self.fatal = self.refuse
            return
        self._pending.append((item, on_acked))

    def poll(self, timeout_s: float = 0.0) -> None:
        if self.auto_ack:
            self.ack()

    def ack(self) -> None:
        pending, self._pending = self._pending, []
        for item, on_acked in pending:
            self.parked.append(item)
            on_acked(item)

    def close(self, timeout_s: float = 10.0) -> None:
        return None


def _tp(record: SourceRecord) -> TP:
    return (record.topic, record.partition)


def _partitions(call: Call) -> set[TP]:
    return {_tp(m.record) for m in call.events}


def _failure(reason: str) -> Failure:
    return Failure(Stage.PUT_EVENTS, "InvalidInputException", reason)


def event_ids(calls: list[Call]) -> list[str]:
    return [m.event["eventId"] for call in calls for m in call.events]


def records_of(calls: list[Call]) -> list[MappedEvent]:
    return [m for call in calls for m in call.events]
