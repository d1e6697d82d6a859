"""Mapped events to accepted PutEvents calls.

`batching.py` groups a session's events into calls of up to 10; `delivery.py` keeps calls in
flight and makes each succeed (retries, bisection of bad input) on the poll loop's thread;
`outcomes.py` says what each AWS error means; `flow.py` sets the pace (adaptive in-flight limit,
optional rate cap); `crt.py` puts calls on the wire with the AWS Common Runtime; `wire.py` takes
what a call needs from boto3's configuration and encodes bodies.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol

from consumer.records import TP
from consumer.send.batching import Call, SessionBatcher
from consumer.send.delivery import Completion, Delivery, SendResult

__all__ = ["Call", "Completion", "Delivery", "SendResult", "Sender", "SessionBatcher"]


class Sender(Protocol):
    """Calls in flight, as the poll loop sees them (`Delivery`; an in-memory fake in tests)."""

    @property
    def in_flight(self) -> int: ...
    @property
    def limit(self) -> int: ...
    def capacity(self) -> int: ...
    def submit(self, call: Call) -> None: ...
    def completions(self, timeout_s: float = 0.0) -> list[Completion]: ...
    def in_flight_for(self, partitions: Collection[TP]) -> int: ...
    def cancel(self, partitions: Collection[TP] | None = None) -> None: ...
    def close(self) -> None: ...
