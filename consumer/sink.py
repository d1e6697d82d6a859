"""PutEvents calls, with AWS errors sorted into what to do about them.

transient (throttling, 5xx, timeouts, connection errors): retry with backoff and jitter, never
dead-letter. bad data (InvalidInputException): one bad event rejects the whole call, so bisect to
find it and send the rest. fatal (credentials, permissions, unknown tracker): stop; nothing the
data could fix.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    wait_random_exponential,
)

from consumer.batching import Call
from consumer.flowcontrol import AdaptiveLimit, RateLimiter
from consumer.metrics import Metrics
from consumer.putevents import LeanPutEvents
from consumer.records import Failure, MappedEvent, Stage

log = logging.getLogger(__name__)

TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalServerError",
        "InternalFailure",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)
BAD_DATA_CODES = frozenset({"InvalidInputException"})
THROTTLING_CODES = frozenset({"ThrottlingException", "Throttling", "TooManyRequestsException"})


class ErrorKind(Enum):
    TRANSIENT = "transient"
    BAD_DATA = "bad_data"
    FATAL = "fatal"


class FatalSinkError(Exception):
    """The endpoint refuses us for a reason only an operator can fix."""


def classify(exc: BaseException) -> ErrorKind:
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in BAD_DATA_CODES:
            return ErrorKind.BAD_DATA
        if code in TRANSIENT_CODES or status >= 500:
            return ErrorKind.TRANSIENT
        return ErrorKind.FATAL
    if isinstance(
        exc,
        EndpointConnectionError | ConnectionClosedError | ReadTimeoutError | ConnectTimeoutError,
    ):
        return ErrorKind.TRANSIENT
    if isinstance(exc, NoCredentialsError):
        return ErrorKind.FATAL
    if isinstance(exc, BotoCoreError):
        return ErrorKind.TRANSIENT
    return ErrorKind.FATAL


def error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "ClientError"))
    return type(exc).__name__


def make_client(region: str, max_connections: int = 10) -> LeanPutEvents:
    """A PutEvents client whose retries we own (tenacity), so every retry is visible.

    Configured as a boto3 client (the endpoint from AWS_ENDPOINT_URL_PERSONALIZE_EVENTS when set,
    proxies, CA bundle, the default credential chain), then sent through `LeanPutEvents`: boto3's
    per-call machinery costs more CPU than everything else the consumer does for a call.
    """
    config = Config(
        region_name=region,
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=5,
        read_timeout=15,
        max_pool_connections=max_connections,
        parameter_validation=False,
    )
    session = boto3.session.Session()
    client = session.client("personalize-events", config=config)
    return LeanPutEvents(client, session.get_credentials())


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
                raise FatalSinkError(_fatal_message(exc)) from exc
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
            raise FatalSinkError(_fatal_message(exc)) from exc
        self._limit.on_success()

    def _attempt(self, call: Call) -> None:
        started = time.monotonic()
        try:
            self._client.put_events(**call.request())
        except Exception as exc:
            self._metrics.calls.labels(_outcome(exc)).inc()
            raise
        finally:
            self._metrics.call_seconds.observe(time.monotonic() - started)
        self._metrics.calls.labels("accepted").inc()
        self._metrics.events_per_call.observe(len(call.events))


def _outcome(exc: BaseException) -> str:
    kind = classify(exc)
    if kind is ErrorKind.BAD_DATA:
        return "invalid_input"
    if kind is ErrorKind.TRANSIENT:
        return "throttled" if error_code(exc) in THROTTLING_CODES else "transient"
    return "fatal"


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


def _fatal_message(exc: BaseException) -> str:
    code = error_code(exc)
    hints = {
        "AccessDeniedException": "grant personalize:PutEvents on the event tracker to this role",
        "UnrecognizedClientException": "the AWS credentials are not valid",
        "InvalidSignatureException": "the AWS secret key or clock is wrong",
        "ExpiredTokenException": "the AWS session token expired",
        "ResourceNotFoundException": "PERSONALIZE_TRACKING_ID or AWS_REGION is wrong",
        "NoCredentialsError": "no AWS credentials found in the default chain",
    }
    hint = hints.get(code, "see the AWS error")
    message = (
        exc.response.get("Error", {}).get("Message", "") if isinstance(exc, ClientError) else ""
    )
    return f"PutEvents refused with {code}: {hint}" + (f" ({message})" if message else "")
