"""One PutEvents call made to succeed: bisected on bad input, retried while transient.

Runs on a sender thread, so backoff never stalls the poll loop. What each AWS error means is
decided in `outcomes.py`.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    wait_random_exponential,
)

from consumer.errors import AwsRefused
from consumer.ops.metrics import Metrics
from consumer.records import Failure, MappedEvent, Stage
from consumer.send.batching import Call
from consumer.send.flow import AdaptiveLimit, RateLimiter
from consumer.send.outcomes import (
    THROTTLING_CODES,
    ErrorKind,
    classify,
    error_code,
    fatal_message,
    outcome,
)

log = logging.getLogger(__name__)


@dataclass
class SendResult:
    accepted: list[MappedEvent] = field(default_factory=list)
    rejected: list[tuple[MappedEvent, Failure]] = field(default_factory=list)
    #: Left unsent because the call was cancelled (revoke, shutdown); not done, not committed.
    unsent: list[MappedEvent] = field(default_factory=list)


class PutEventsSink:
    """Sends one call (bisecting on bad input) and retries transient errors until it is cancelled.

    Runs on a worker thread, so backoff never stalls the poll loop. Throttling is reported to the
    adaptive limit; every attempt takes a token from the rate cap and is counted in the metrics.
    """

    def __init__(
        self,
        client: Any,
        limit: AdaptiveLimit | None = None,
        rate: RateLimiter | None = None,
        metrics: Metrics | None = None,
        max_backoff_s: float = 5.0,
    ) -> None:
        self._client = client
        self._limit = limit or AdaptiveLimit(1)
        self._rate = rate or RateLimiter(None)
        self._metrics = metrics or Metrics()
        self._max_backoff_s = max_backoff_s

    def send(self, call: Call, cancel: threading.Event) -> SendResult:
        result = SendResult()
        try:
            self._send(call, result, cancel)
        except _Cancelled:
            finished = {id(m) for m in result.accepted} | {id(m) for m, _ in result.rejected}
            result.unsent = [m for m in call.events if id(m) not in finished]
        return result

    def _send(self, call: Call, result: SendResult, cancel: threading.Event) -> None:
        try:
            self._put_with_retry(call, cancel)
        except ClientError as exc:
            if classify(exc) is not ErrorKind.BAD_DATA:
                raise AwsRefused(fatal_message(exc)) from exc
            if len(call.events) == 1:
                reason = exc.response.get("Error", {}).get("Message", "rejected by PutEvents")
                failure = Failure(Stage.PUT_EVENTS, error_code(exc), reason)
                result.rejected.append((call.events[0], failure))
                return
            half = len(call.events) // 2
            self._send(Call(call.session, call.events[:half]), result, cancel)
            self._send(Call(call.session, call.events[half:]), result, cancel)
            return
        result.accepted.extend(call.events)

    def _put_with_retry(self, call: Call, cancel: threading.Event) -> None:
        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            self._metrics.retries.inc()
            if exc is not None and error_code(exc) in THROTTLING_CODES:
                self._limit.on_throttle()
            _log_retry(state)

        retrying = Retrying(
            retry=retry_if_exception(lambda e: classify(e) is ErrorKind.TRANSIENT),
            wait=wait_random_exponential(multiplier=0.1, max=self._max_backoff_s),  # full jitter
            stop=lambda _state: cancel.is_set(),
            sleep=lambda seconds: _interruptible_sleep(cancel, seconds),
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    if cancel.is_set():
                        raise _Cancelled
                    self._rate.acquire()
                    self._attempt(call)
        except _Cancelled:
            raise
        except Exception as exc:
            kind = classify(exc)
            if kind is ErrorKind.TRANSIENT:  # retries only end this way when cancelled
                raise _Cancelled from exc
            if isinstance(exc, ClientError):  # bad data or fatal: `_send` decides
                raise
            raise AwsRefused(fatal_message(exc)) from exc
        self._limit.on_success()

    def _attempt(self, call: Call) -> None:
        started = time.monotonic()
        try:
            self._client.put_events(**call.request())
        except Exception as exc:
            self._metrics.calls.labels(outcome(exc)).inc()
            raise
        finally:
            self._metrics.call_seconds.observe(time.monotonic() - started)
        self._metrics.calls.labels("accepted").inc()
        self._metrics.events_per_call.observe(len(call.events))


def _interruptible_sleep(cancel: threading.Event, seconds: float) -> None:
    """Backoff that a cancel (revoke, shutdown) cuts short."""
    cancel.wait(seconds)


class _Cancelled(Exception):
    """The call was cancelled before it was accepted."""


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    delay = state.next_action.sleep if state.next_action else 0.0
    log.warning(
        "PutEvents transient error, retrying",
        extra={
            "error": error_code(exc) if exc else "",
            "attempt": state.attempt_number,
            "retry_in_s": round(delay, 3),
        },
    )
