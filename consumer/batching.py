"""Events to PutEvents calls: one call carries up to 10 events of one session, in offset order.

Full calls matter more than anything else for throughput: a dataset group's quota is counted in
calls, not events.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from consumer.records import MappedEvent, SessionKey

MAX_EVENTS_PER_CALL = 10


@dataclass(frozen=True, slots=True)
class Call:
    """One PutEvents request's worth of events."""

    session: SessionKey
    events: tuple[MappedEvent, ...]

    def request(self) -> dict[str, object]:
        params: dict[str, object] = {
            "trackingId": self.session.tracking_id,
            "sessionId": self.session.session_id,
            "eventList": [m.event for m in self.events],
        }
        if self.session.user_id is not None:
            params["userId"] = self.session.user_id
        return params


def plan_calls(events: Iterable[MappedEvent], max_events: int = MAX_EVENTS_PER_CALL) -> list[Call]:
    """Group by session keeping each session's order, and cut each group into full calls."""
    sessions: dict[SessionKey, list[MappedEvent]] = {}
    for event in events:
        sessions.setdefault(event.session, []).append(event)
    return [
        Call(session, tuple(group[i : i + max_events]))
        for session, group in sessions.items()
        for i in range(0, len(group), max_events)
    ]
