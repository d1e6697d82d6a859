"""Entries to calls: one call carries up to 10 entries of one key, in offset order. For PutEvents
the key is a session; for the other operations, a target (dataset or tracker) and a partition.

Full calls matter more than anything else for throughput: a dataset group's quota is counted in
calls, not events. So a session's events wait until it has 10, or until its oldest has waited
`linger_s`. Only one call per session is in flight, so a session's events arrive in offset order.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from consumer.records import OPERATIONS, TP, MappedEvent, SessionKey

MAX_EVENTS_PER_CALL = 10


def _tp(event: MappedEvent) -> TP:
    return (event.record.topic, event.record.partition)


@dataclass(frozen=True, slots=True)
class Call:
    """One request's worth of entries (PutEvents events, items, users, ...), of one key."""

    session: SessionKey
    events: tuple[MappedEvent, ...]
    #: Catalog entries left out because a later one in this call updates the same id, each
    #: with the one that supersedes it: done when it is, never sent.
    superseded: tuple[tuple[MappedEvent, MappedEvent], ...] = ()

    def request(self) -> dict[str, object]:
        return request_of(self.session, self.events)


def request_of(key: SessionKey, events: Sequence[MappedEvent]) -> dict[str, object]:
    """The request of `key`'s operation carrying `events`, in boto3's parameter form."""
    if key.operation == "PutEvents":
        params: dict[str, object] = {
            "trackingId": key.tracking_id,
            "sessionId": key.session_id,
            "eventList": [m.event for m in events],
        }
        if key.user_id is not None:
            params["userId"] = key.user_id
        return params
    operation = OPERATIONS[key.operation]
    return {operation.target: key.tracking_id, operation.member: [m.event for m in events]}


def latest_only(
    key_field: str, events: tuple[MappedEvent, ...]
) -> tuple[tuple[MappedEvent, ...], tuple[tuple[MappedEvent, MappedEvent], ...]]:
    """The events of a call with only the last (in offset order) of each id, and the others
    paired with the one that supersedes them: a compacted topic's older value is never sent."""
    last = {event.event.get(key_field): event for event in events}
    if len(last) == len(events):
        return events, ()
    kept: list[MappedEvent] = []
    superseded: list[tuple[MappedEvent, MappedEvent]] = []
    for event in events:
        newest = last[event.event.get(key_field)]
        if newest is event:
            kept.append(event)
        else:
            superseded.append((event, newest))
    return tuple(kept), tuple(superseded)


class SessionBatcher:
    """Per-session queues that release full calls at once and partial ones after the linger.

    One call in flight per session drains a very busy session at about 10 events per round
    trip, whatever else happens: its calls go first (`_again`), and `busiest` tells the source
    how much of the buffer it holds, so the others are not made to wait for it.
    """

    def __init__(self, linger_s: float, max_events: int = MAX_EVENTS_PER_CALL) -> None:
        self._linger_s = linger_s
        self._max = max_events
        self._busiest: SessionKey | None = None
        self._busiest_len = 0
        self._queues: dict[SessionKey, deque[tuple[float, MappedEvent]]] = {}
        self._in_flight: set[SessionKey] = set()
        self._full: dict[SessionKey, None] = {}  # insertion-ordered set
        #: Full again as their call came back: they go first, so a busy session gets a call
        #: every round trip (its only pace) instead of queueing behind every other full one.
        self._again: dict[SessionKey, None] = {}
        #: (oldest event's time, tie-break, session), earliest first. A heap, not a queue: a
        #: session whose call came back lingers from its oldest waiting event, which may be
        #: older than sessions queued since; behind them it would wait up to a linger more.
        self._lingering: list[tuple[float, int, SessionKey]] = []
        self._ties = itertools.count()
        self._buffered = 0

    def __len__(self) -> int:
        """Events waiting for a call (not those in flight)."""
        return self._buffered

    @property
    def busiest(self) -> int:
        """Events waiting in the busiest session: the largest queue seen growing, kept up to
        date as it drains (another that has grown past it since is seen as it grows)."""
        return self._busiest_len

    def add(self, event: MappedEvent, now: float) -> None:
        queue = self._queues.get(event.session)
        if queue is None:
            queue = self._queues[event.session] = deque()
        queue.append((now, event))
        self._buffered += 1
        if len(queue) > self._busiest_len:
            self._busiest, self._busiest_len = event.session, len(queue)
        if event.session in self._in_flight:
            return
        if len(queue) == 1:
            heapq.heappush(self._lingering, (now, next(self._ties), event.session))
        if len(queue) >= self._max:
            self._full[event.session] = None

    def ready(self, now: float, limit: int, flush: bool = False) -> list[Call]:
        """Up to `limit` calls to send now: full ones first, then those that lingered enough."""
        calls: list[Call] = []
        while self._again and len(calls) < limit:
            calls.append(self._take(next(iter(self._again))))
        while self._full and len(calls) < limit:
            calls.append(self._take(next(iter(self._full))))
        cutoff = now if flush else now - self._linger_s
        while self._lingering and len(calls) < limit and self._lingering[0][0] <= cutoff:
            since, _tie, session = heapq.heappop(self._lingering)
            queue = self._queues.get(session)
            if queue and session not in self._in_flight and queue[0][0] == since:
                calls.append(self._take(session))
        return calls

    def complete(self, session: SessionKey) -> None:
        """The session's call finished; its next events may go."""
        self._in_flight.discard(session)
        queue = self._queues.get(session)
        if not queue:
            self._queues.pop(session, None)
            return
        heapq.heappush(self._lingering, (queue[0][0], next(self._ties), session))
        if len(queue) >= self._max:
            self._again[session] = None

    def retry(self, events: Collection[MappedEvent], now: float) -> None:
        """Put a cancelled call's events back at the front of their session, keeping order."""
        for event in reversed(list(events)):
            queue = self._queues.setdefault(event.session, deque())
            queue.appendleft((now, event))
            self._buffered += 1
        for session in {e.session for e in events}:
            if session not in self._in_flight:
                since = self._queues[session][0][0]
                heapq.heappush(self._lingering, (since, next(self._ties), session))
                if len(self._queues[session]) >= self._max:
                    self._full[session] = None

    def drop(self, partitions: Collection[TP]) -> None:
        """Forget waiting events of revoked partitions; their new owner reads them again."""
        self._busiest, self._busiest_len = None, 0  # seen again as queues grow
        for session, queue in list(self._queues.items()):
            kept = deque(item for item in queue if _tp(item[1]) not in partitions)
            self._buffered -= len(queue) - len(kept)
            if not kept and session not in self._in_flight:
                del self._queues[session]
                self._full.pop(session, None)
                self._again.pop(session, None)
                continue
            self._queues[session] = kept
            if len(kept) < self._max:
                self._full.pop(session, None)
                self._again.pop(session, None)
            if kept and session not in self._in_flight:
                heapq.heappush(self._lingering, (kept[0][0], next(self._ties), session))

    def _take(self, session: SessionKey) -> Call:
        queue = self._queues[session]
        count = min(self._max, len(queue))
        events = tuple(queue.popleft()[1] for _ in range(count))
        self._buffered -= count
        if session == self._busiest:
            self._busiest_len = len(queue)
        self._full.pop(session, None)
        self._again.pop(session, None)
        self._in_flight.add(session)
        if session.operation != "PutEvents":
            key_field = OPERATIONS[session.operation].key
            if key_field is not None:
                kept, superseded = latest_only(key_field, events)
                return Call(session, kept, superseded)
        return Call(session, events)
