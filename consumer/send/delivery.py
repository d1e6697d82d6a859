"""Calls in flight, each made to succeed, all on the poll loop's thread.

A call is retried while its errors are transient (throttling, 5xx, timeouts, lost connections:
exponential backoff with full jitter, tenacity's, until it succeeds or is cancelled), bisected on
bad input (one bad event rejects a whole call: its halves go out in turn, in order, until the bad
events stand alone), and stopped by what only an operator can fix. Waiting for a retry or a rate
token is a timer, never a sleep: `completions` wakes for whichever comes first, an answer or a due
timer. No thread of ours is involved; the answers come from the CRT client's event-loop thread.

What each AWS error means is `outcomes.py`'s to say; the pace is `flow.py`'s.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import time
from collections import deque
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from botocore.exceptions import ClientError, NoCredentialsError
from tenacity import RetryCallState, Retrying, wait_random_exponential

from consumer.errors import AwsRefused, FatalError
from consumer.ops.metrics import Metrics
from consumer.records import TP, Failure, MappedEvent, Stage
from consumer.send.batching import Call, request_of
from consumer.send.crt import Answer
from consumer.send.flow import AdaptiveLimit, RateLimiter
from consumer.send.outcomes import THROTTLING_CODES, ErrorKind, classify, fatal_message, outcome
from consumer.send.wire import encode_request

log = logging.getLogger(__name__)

#: How soon a call waits to try again when its dataset has its adaptive limit of calls out.
_TARGET_BUSY_S = 0.05


class Client(Protocol):
    """What puts calls on the wire (`crt.CrtClient`)."""

    def send(self, body: bytes, tag: Any, operation: str = "PutEvents") -> None: ...
    def drain(self, timeout_s: float) -> list[Answer]: ...
    def close(self) -> None: ...


class Errors(Protocol):
    """Turns an error answer into boto3's own exception (`wire.Boto3Config.error`)."""

    def __call__(self, status: int, headers: dict[str, str], body: bytes) -> ClientError: ...


@dataclass
class SendResult:
    accepted: list[MappedEvent] = field(default_factory=list)
    rejected: list[tuple[MappedEvent, Failure]] = field(default_factory=list)
    #: Left unsent because the call was cancelled (revoke, shutdown); not done, not committed.
    unsent: list[MappedEvent] = field(default_factory=list)
    #: Catalog entries a later one of the call updated: done with it, never sent.
    superseded: list[MappedEvent] = field(default_factory=list)


@dataclass(frozen=True)
class Completion:
    """A finished call: its result, or the fatal error that ended it."""

    call: Call
    result: SendResult | None
    fatal: FatalError | None = None


@dataclass(eq=False, slots=True)
class _Flight:
    call: Call
    retry: RetryCallState | None  # made at the first retry: most calls never need one
    #: What is left to send, in order; a bisected part becomes its two halves at the front.
    parts: deque[tuple[MappedEvent, ...]]
    result: SendResult = field(default_factory=SendResult)
    started: float = 0.0  # when the current attempt left
    sending: bool = False
    cancelled: bool = False
    done: bool = False  # its completion is out (a timer may still name it: it is ignored)

    def touches(self, partitions: Collection[TP]) -> bool:
        """Whether any of its events is of `partitions` (asked on a rebalance, not per call)."""
        return any((m.record.topic, m.record.partition) in partitions for m in self.call.events)


class Delivery:
    """Calls in flight up to the adaptive limit; finished ones come out of `completions`."""

    def __init__(
        self,
        client: Client,
        errors: Errors,
        limit: AdaptiveLimit,
        rate: RateLimiter,
        metrics: Metrics,
        max_backoff_s: float = 5.0,
        rates: Mapping[str, RateLimiter] | None = None,
    ) -> None:
        self._client, self._errors = client, errors
        self._limit, self._rate, self._metrics = limit, rate, metrics
        #: The other operations' own caps (their quotas are per operation and dataset), and an
        #: adaptive limit per (operation, target): one throttled dataset slows only itself.
        self._rates = dict(rates or {})
        self._limits: dict[tuple[str, str], AdaptiveLimit] = {}
        self._sending: dict[tuple[str, str], int] = {}
        self._retrying = Retrying()
        self._wait = wait_random_exponential(multiplier=0.1, max=max_backoff_s)  # full jitter
        self._flights: dict[int, _Flight] = {}
        self._timers: list[tuple[float, int, _Flight]] = []  # (when, tie-break, flight)
        self._ties = itertools.count()
        self._finished: list[Completion] = []

    @property
    def in_flight(self) -> int:
        """Calls not finished: on the wire, waiting for a retry, or waiting for a token."""
        return len(self._flights)

    @property
    def limit(self) -> int:
        return self._limit.limit

    def capacity(self) -> int:
        return max(0, self._limit.limit - len(self._flights))

    def submit(self, call: Call) -> None:
        flight = _Flight(call, None, deque([call.events]))
        self._flights[id(call)] = flight
        self._attempt(flight)

    def completions(self, timeout_s: float = 0.0) -> list[Completion]:
        """Finished calls, waiting up to `timeout_s` for an answer or a due timer."""
        if self._finished:
            timeout_s = 0.0
        elif self._timers:
            timeout_s = max(0.0, min(timeout_s, self._timers[0][0] - time.monotonic()))
        for answer in self._client.drain(timeout_s):
            self._answered(answer.tag, answer)
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            self._attempt(heapq.heappop(self._timers)[2])
        done, self._finished = self._finished, []
        for completion in done:
            del self._flights[id(completion.call)]
        return done

    def in_flight_for(self, partitions: Collection[TP]) -> int:
        return sum(1 for f in self._flights.values() if f.touches(partitions))

    def cancel(self, partitions: Collection[TP] | None = None) -> None:
        """Stop retrying these calls; their unsent events stay uncommitted.

        A call on the wire ends when its answer comes (accepted, or unsent).
        """
        for flight in self._flights.values():
            if flight.cancelled or (partitions is not None and not flight.touches(partitions)):
                continue
            flight.cancelled = True
            if not flight.sending and not flight.done:
                self._finish(flight)

    def close(self) -> None:
        self.cancel()
        self._client.close()

    # -- one call -----------------------------------------------------------------------------

    def _attempt(self, flight: _Flight) -> None:
        if flight.done:
            return
        if flight.cancelled:
            self._finish(flight)
            return
        session = flight.call.session
        operation = session.operation
        if operation == "PutEvents":
            wait = self._rate.reserve()
        else:
            target = (operation, session.tracking_id)
            if self._sending.get(target, 0) >= self._target_limit(target).limit:
                self._later(flight, _TARGET_BUSY_S)
                return
            wait = self._rates[operation].reserve() if operation in self._rates else 0.0
        if wait > 0:
            self._later(flight, wait)
            return
        part = flight.parts[0]
        try:
            body = encode_request(request_of(session, part))
        except orjson.JSONEncodeError as exc:  # a string JSON cannot carry: a lone surrogate
            self._bad_data(flight, part, "JSONEncodeError", f"{operation}: not JSON ({exc})")
            return
        flight.started, flight.sending = time.monotonic(), True
        if operation != "PutEvents":
            self._sending[target] = self._sending.get(target, 0) + 1
        try:
            self._client.send(body, flight, operation)
        except Exception as exc:  # signing: no credentials anywhere in the chain
            flight.sending = False
            if operation != "PutEvents":
                self._sending[target] -= 1
            refused = fatal_message(NoCredentialsError(), operation) + f" ({exc})"
            self._refused(flight, AwsRefused(refused))

    def _answered(self, flight: _Flight, answer: Answer) -> None:
        flight.sending = False
        self._metrics.call_seconds.observe(time.monotonic() - flight.started)
        part = flight.parts[0]
        session = flight.call.session
        operation = session.operation
        limit = self._limit
        if operation != "PutEvents":
            target = (operation, session.tracking_id)
            self._sending[target] -= 1
            limit = self._target_limit(target)
        if 200 <= answer.status < 300:
            counted = self._metrics.operation(operation)
            counted.accepted.inc()
            counted.events_per_call.observe(len(part))
            limit.on_success()
            flight.result.accepted.extend(part)
            flight.parts.popleft()
            flight.retry = None
            self._next(flight)
            return
        exc = None if answer.error else self._errors(answer.status, answer.headers, answer.body)
        kind = ErrorKind.TRANSIENT if exc is None else classify(exc)
        self._metrics.calls.labels("transient" if exc is None else outcome(exc), operation).inc()
        if kind is ErrorKind.FATAL:
            assert exc is not None
            self._refused(flight, AwsRefused(fatal_message(exc, operation)))
        elif kind is ErrorKind.BAD_DATA:
            assert isinstance(exc, ClientError)
            error = exc.response.get("Error", {})
            code = error.get("Code", "InvalidInputException")
            self._bad_data(flight, part, code, error.get("Message", f"rejected by {operation}"))
        elif flight.cancelled:
            self._finish(flight)
        else:
            self._retry(flight, answer.error or _code(exc), limit)

    def _bad_data(
        self, flight: _Flight, part: tuple[MappedEvent, ...], code: str, reason: str
    ) -> None:
        """One bad event spoils its call: the halves go out in turn until it stands alone."""
        flight.parts.popleft()
        if len(part) == 1:
            flight.result.rejected.append((part[0], Failure(Stage.PUT_EVENTS, code, reason)))
        else:
            half = len(part) // 2
            flight.parts.extendleft((part[half:], part[:half]))  # first half goes first
        self._next(flight)

    def _target_limit(self, target: tuple[str, str]) -> AdaptiveLimit:
        found = self._limits.get(target)
        if found is None:
            found = self._limits[target] = AdaptiveLimit(self._limit.maximum)
        return found

    def _retry(self, flight: _Flight, error: str, limit: AdaptiveLimit) -> None:
        operation = flight.call.session.operation
        self._metrics.operation(operation).retries.inc()
        if error in THROTTLING_CODES:
            limit.on_throttle()
        if flight.retry is None:
            flight.retry = RetryCallState(self._retrying, None, (), {})
        delay = self._wait(flight.retry)
        log.warning(
            "%s transient error, retrying",
            operation,
            extra={
                "operation": operation,
                "error": error,
                "attempt": flight.retry.attempt_number,
                "retry_in_s": round(delay, 3),
            },
        )
        flight.retry.attempt_number += 1
        self._later(flight, delay)

    def _next(self, flight: _Flight) -> None:
        if flight.parts and not flight.cancelled:
            self._attempt(flight)
        else:
            self._finish(flight)

    def _finish(self, flight: _Flight) -> None:
        """Done: what was not accepted or rejected is unsent (cancelled)."""
        result = flight.result
        result.unsent = [m for part in flight.parts for m in part]
        if flight.call.superseded:
            unsent = {id(m) for m in result.unsent}
            for older, newer in flight.call.superseded:
                (result.unsent if id(newer) in unsent else result.superseded).append(older)
        flight.parts.clear()
        flight.done = True
        self._finished.append(Completion(flight.call, result))

    def _refused(self, flight: _Flight, fatal: FatalError) -> None:
        flight.done = True
        self._finished.append(Completion(flight.call, None, fatal))

    def _later(self, flight: _Flight, delay_s: float) -> None:
        heapq.heappush(self._timers, (time.monotonic() + delay_s, next(self._ties), flight))


def _code(exc: ClientError | None) -> str:
    if exc is None:
        return "ConnectionError"
    return str(exc.response.get("Error", {}).get("Code", "ClientError"))
