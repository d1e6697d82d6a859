"""Calls in flight: a fixed set of sending threads and the results they hand back.

A PutEvents call spends most of its time waiting on the network, so a few dozen threads keep many
calls in flight while the poll loop stays free. Calls go to the threads through one queue and
results come back through another that only the poll loop reads, so every state change (offsets,
batcher, dead-letters) happens on one thread. Plain queues rather than an executor: a submit is
one `put`, with no future or pool bookkeeping on the poll loop's hot path.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Protocol

from consumer.errors import FatalError
from consumer.records import TP
from consumer.send.batching import Call
from consumer.send.flow import AdaptiveLimit
from consumer.send.sink import SendResult


class Sink(Protocol):
    """What makes one call, retries included, until done or `cancel`led (`PutEventsSink`)."""

    def send(self, call: Call, cancel: threading.Event) -> SendResult: ...


@dataclass(frozen=True)
class Completion:
    """A finished call: its result, or the fatal error that ended it."""

    call: Call
    result: SendResult | None
    fatal: FatalError | None = None


@dataclass
class _InFlight:
    call: Call
    partitions: frozenset[TP]
    cancel: threading.Event = field(default_factory=threading.Event)


class Delivery:
    def __init__(self, sink: Sink, limit: AdaptiveLimit) -> None:
        self._sink = sink
        self._limit = limit
        self._work: queue.SimpleQueue[_InFlight | None] = queue.SimpleQueue()
        self._finished: queue.SimpleQueue[Completion] = queue.SimpleQueue()
        self._in_flight: dict[int, _InFlight] = {}
        #: Started as calls need them, up to the limit's maximum; they live until `close`.
        self._senders: list[threading.Thread] = []

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    @property
    def limit(self) -> int:
        return self._limit.limit

    def capacity(self) -> int:
        return max(0, self._limit.limit - len(self._in_flight))

    def submit(self, call: Call) -> None:
        partitions = frozenset((m.record.topic, m.record.partition) for m in call.events)
        entry = _InFlight(call, partitions)
        self._in_flight[id(call)] = entry
        self._work.put(entry)
        if len(self._senders) < min(len(self._in_flight), self._limit.maximum):
            sender = threading.Thread(
                target=self._serve, name=f"put-events-{len(self._senders)}", daemon=True
            )
            sender.start()
            self._senders.append(sender)

    def _serve(self) -> None:
        while (entry := self._work.get()) is not None:
            self._run(entry)

    def _run(self, entry: _InFlight) -> None:
        try:
            completion = Completion(entry.call, self._sink.send(entry.call, entry.cancel))
        except FatalError as exc:
            completion = Completion(entry.call, None, exc)
        except Exception as exc:  # a bug must not leave a call in flight forever
            bug = FatalError(f"unexpected error sending PutEvents: {exc!r}")
            completion = Completion(entry.call, None, bug)
        self._finished.put(completion)

    def completions(self, timeout_s: float = 0.0) -> list[Completion]:
        """Finished calls, waiting up to `timeout_s` for the first one."""
        done: list[Completion] = []
        try:
            done.append(
                self._finished.get(timeout=timeout_s)
                if timeout_s > 0
                else self._finished.get_nowait()
            )
            while True:
                done.append(self._finished.get_nowait())
        except queue.Empty:
            pass
        for completion in done:
            self._in_flight.pop(id(completion.call), None)
        return done

    def in_flight_for(self, partitions: Collection[TP]) -> int:
        return sum(1 for e in self._in_flight.values() if not e.partitions.isdisjoint(partitions))

    def cancel(self, partitions: Collection[TP] | None = None) -> None:
        """Stop retrying these calls; their unsent events stay uncommitted."""
        for entry in self._in_flight.values():
            if partitions is None or not entry.partitions.isdisjoint(partitions):
                entry.cancel.set()

    def close(self) -> None:
        """Cancel what is in flight and wait for the senders to finish their current call."""
        self.cancel()
        for _ in self._senders:
            self._work.put(None)
        for sender in self._senders:
            sender.join()
