"""Where records come from: Kafka, with the fetch steered by what the rest of the loop can take.

The poll loop sees a `Source` (`KafkaSource`, or an in-memory fake in the loop's unit tests) and
hears about assignment changes as a `RebalanceListener`.
"""

from __future__ import annotations

from typing import Protocol

from consumer.errors import FatalError
from consumer.records import TP, SourceRecord


class RebalanceListener(Protocol):
    """Told of assignment changes, from inside `Source.consume`."""

    def on_assigned(self, assigned: dict[TP, int]) -> None:
        """New partitions, each with the epoch its records will carry."""

    def on_revoked(self, revoked: list[TP]) -> None:
        """Partitions leaving; still ours (and committable) until this returns."""

    def on_lost(self, lost: list[TP]) -> None:
        """Partitions already taken away: nothing of them may be committed."""


class Source(Protocol):
    """The records the loop works on, and the levers it pulls on the fetch."""

    @property
    def fatal(self) -> FatalError | None: ...
    @property
    def assigned(self) -> int: ...
    @property
    def holding(self) -> bool: ...
    @property
    def paused(self) -> bool: ...
    def subscribe(self, listener: RebalanceListener) -> None: ...
    def consume(self, timeout_s: float) -> list[SourceRecord]: ...
    def held(self, tp: TP) -> bool: ...
    def hold(self, record: SourceRecord, cause: Exception) -> None: ...
    def recovered(self, tp: TP) -> None: ...
    def backpressure(self, unfinished: int, busiest: int) -> None: ...
    def stop_fetching(self) -> None: ...
    def commit(self, positions: dict[TP, int]) -> None: ...
    def caught_up(self) -> bool: ...
    def close(self) -> None: ...
