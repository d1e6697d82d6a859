"""An experiment, not the service: PutEvents sessions with up to N calls in flight at once.

The service keeps one call in flight per session, so a session's events reach Personalize in
offset order (README.md, "Full calls, in order": AWS's documentation does not say what
Personalize makes of a session's events arriving out of `sentAt` order). That is what bounds
`dense` by its busiest session and the naive ratio below 100x (bench/README.md). This runs the
consumer with a batcher that lets a PutEvents session have `SESSION_CALLS` (default 2) calls in
flight, to measure what the other choice would give:

    bench/run --scenarios dense,naive --consumer-env SESSION_CALLS=2 \\
        --consumer-command "python $PWD/bench/session_pipelining.py run"

(an absolute path: the consumer runs in a temporary directory).

It swaps the pipeline's batcher for a subclass that counts calls in flight per session instead of
keeping a set; the catalog operations keep one call per key, since their "latest wins" needs order.
It reaches into `SessionBatcher`'s private state: if the batcher changes, this may break, which is
the price of not shipping a setting the team has not decided on.
"""

from __future__ import annotations

import heapq
import os
import sys
from collections import Counter

import consumer.pipeline
from consumer.cli import main
from consumer.records import SessionKey
from consumer.send.batching import Call, SessionBatcher

LIMIT = int(os.environ.get("SESSION_CALLS", "2"))


class _AtLimit:
    """Stands in for the batcher's set of sessions in flight: `session in it` means that the
    session has as many calls in flight as it may have."""

    def __init__(self) -> None:
        self._calls: Counter[SessionKey] = Counter()

    def __contains__(self, session: SessionKey) -> bool:
        return self._calls[session] >= (LIMIT if session.operation == "PutEvents" else 1)

    def add(self, session: SessionKey) -> None:
        self._calls[session] += 1

    def discard(self, session: SessionKey) -> None:
        if self._calls[session] > 1:
            self._calls[session] -= 1
        else:
            self._calls.pop(session, None)


class PipelinedBatcher(SessionBatcher):
    def __init__(self, linger_s: float) -> None:
        super().__init__(linger_s)
        self._in_flight = _AtLimit()  # type: ignore[assignment]

    def _take(self, session: SessionKey) -> Call:
        """As the batcher's, and what is left of the session may go at once if it has room."""
        call = super()._take(session)
        queue = self._queues.get(session)
        if queue and session not in self._in_flight:
            heapq.heappush(self._lingering, (queue[0][0], next(self._ties), session))
            if len(queue) >= self._max:
                self._full[session] = None
        return call


if __name__ == "__main__":
    consumer.pipeline.SessionBatcher = PipelinedBatcher  # type: ignore[misc]
    sys.argv[0] = "personalize-consumer"
    sys.exit(main())
