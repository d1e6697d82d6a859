"""What the emulated endpoint answers: PutEvents as AWS does, plus the `/_emulator/` admin API.

Errors follow the rest-json convention botocore parses: the code in `x-amzn-ErrorType`, the
text in a JSON `message`. Faults apply to PutEvents only; the admin API always answers.
Everything here runs on the event loop thread, except `update_faults`, which may be called
from any thread.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from consumer.mapping.validation import validate_put_events
from consumer.testing.emulator.events_file import EventsFile
from consumer.testing.emulator.faults import FaultDraw, FaultError, Faults, Injected
from consumer.testing.emulator.http import Reply, Request, Response

PUT_EVENTS_PATH = "/events"
ADMIN_PREFIX = "/_emulator/"
SIGNING_SERVICE = "personalize"
_MAX_VIOLATIONS_IN_MESSAGE = 10


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_decode = json.JSONDecoder(parse_constant=_reject_constant).decode


@dataclass(slots=True)
class Stats:
    """Counters. `requests` counts every non-admin request; each also lands in exactly one
    outcome counter: all the others but `accepted_events`, `delayed_calls` and
    `latency_injected_ms`."""

    requests: int = 0
    accepted_calls: int = 0
    accepted_events: int = 0
    rejected_calls: int = 0  # InvalidInputException: the body broke a PutEvents rule.
    serialization_errors: int = 0  # Body was not a JSON object.
    auth_failures: int = 0  # No signature, or one by an access key the account lacks.
    unknown_operations: int = 0
    outage_refusals: int = 0
    access_denied: int = 0
    unknown_trackers: int = 0
    throttled: int = 0
    errors_5xx: int = 0
    delayed_calls: int = 0  # Calls answered after injected latency (any outcome).
    latency_injected_ms: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def error_response(status: int, code: str, message: str) -> Response:
    body = json.dumps({"message": message}).encode()
    return Response(status, body, (("x-amzn-ErrorType", code), _request_id()))


_REQUEST_ID_BASE = str(uuid.uuid4())[:-12]  # UUID-shaped ids; the counter is cheaper than uuid4.
_request_ids = itertools.count(1)


def _request_id() -> tuple[str, str]:
    return ("x-amzn-RequestId", f"{_REQUEST_ID_BASE}{next(_request_ids):012x}")


def _json_response(payload: Mapping[str, Any]) -> Response:
    return Response(200, json.dumps(payload).encode())


_INJECTED: dict[Injected, tuple[int, str, str]] = {
    Injected.ACCESS_DENIED: (
        403,
        "AccessDeniedException",
        "User is not authorized to perform: personalize:PutEvents",
    ),
    Injected.THROTTLE: (400, "ThrottlingException", "Rate exceeded"),
    Injected.INTERNAL_ERROR: (500, "InternalServerError", "Internal server error"),
    Injected.UNAVAILABLE: (503, "ServiceUnavailable", "Service unavailable"),
}


def check_signature(headers: Mapping[str, str]) -> tuple[str, str] | None:
    """SigV4 presence and scope, as AWS checks them before the signature itself.

    Returns (error code, message) or None. The signature is not verified: the emulator has no
    secret keys, and any dummy credentials must work.
    """
    authorization = headers.get("authorization")
    if authorization is None:
        return "MissingAuthenticationTokenException", "Missing Authentication Token"
    prefix = "AWS4-HMAC-SHA256 "
    if not authorization.startswith(prefix + "Credential="):
        return "IncompleteSignatureException", (
            "Authorization header requires 'Credential' parameter and the AWS4-HMAC-SHA256 "
            "algorithm."
        )
    params: dict[str, str] = {}
    for part in authorization[len(prefix) :].split(","):
        name, _, value = part.strip().partition("=")
        params[name] = value
    missing = [
        name for name in ("Credential", "SignedHeaders", "Signature") if not params.get(name)
    ]
    problems = [f"Authorization header requires '{name}' parameter." for name in missing]
    if "x-amz-date" not in headers and "date" not in headers:
        problems.append("Authorization header requires existence of either a 'X-Amz-Date' or")
        problems[-1] += " a 'Date' header."
    if problems:
        return "IncompleteSignatureException", " ".join(problems)
    scope = params["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        return "IncompleteSignatureException", (
            "Credential must have exactly 5 slash-delimited elements, "
            "e.g. keyid/date/region/service/term."
        )
    if scope[3] != SIGNING_SERVICE:
        return "InvalidSignatureException", (
            f"Credential should be scoped to correct service: '{SIGNING_SERVICE}'."
        )
    return None


def _unknown_key(headers: Mapping[str, str], faults: Faults) -> tuple[str, str] | None:
    """The `access_keys` fault: a signature by an access key id the account does not have."""
    if not faults.access_keys:
        return None
    credential = headers.get("authorization", "").partition("Credential=")[2]
    if credential.split("/", 1)[0] in faults.access_keys:
        return None
    return "UnrecognizedClientException", "The security token included in the request is invalid."


def _rejected_event_types(events: list[dict[str, Any]], rejected: tuple[str, ...]) -> list[str]:
    """The `reject_event_types` fault: one message per matching event, naming its position only
    (the value is never echoed back, like the service's own messages about sensitive fields)."""
    return [
        f"eventList[{i}].eventType: is not accepted for this event tracker"
        for i, event in enumerate(events)
        if event.get("eventType") in rejected
    ]


class EmulatorApp:
    """Routes one parsed request to an answer; keeps counters and the events file."""

    def __init__(
        self, faults: Faults, events_file: EventsFile | None = None, seed: int | None = None
    ) -> None:
        self.faults = faults
        self.stats = Stats()
        self.events_file = events_file
        self._draw = FaultDraw(seed)
        self._faults_lock = threading.Lock()

    def update_faults(self, changes: Mapping[str, Any]) -> Faults:
        """Swap in new faults; the lock only orders concurrent updaters, readers never wait."""
        with self._faults_lock:
            self.faults = self.faults.updated(changes)
            return self.faults

    def flush(self) -> None:
        if self.events_file is not None:
            self.events_file.flush()

    def handle(self, request: Request) -> Reply:
        if request.path.startswith(ADMIN_PREFIX):
            return Reply(self._admin(request))
        stats = self.stats
        stats.requests += 1
        if request.path != PUT_EVENTS_PATH or request.method != "POST":
            stats.unknown_operations += 1
            return Reply(error_response(404, "UnknownOperationException", "Unknown operation"))
        faults = self.faults
        injected = self._draw.draw(faults)
        if injected is Injected.OUTAGE:
            stats.outage_refusals += 1
            return Reply(None)
        delay_s = faults.latency_ms / 1000.0 if faults.latency_ms > 0 else 0.0
        response = self._put_events(request, injected, faults, delay_s)
        if delay_s <= 0:
            return Reply(response)
        stats.delayed_calls += 1
        stats.latency_injected_ms += round(faults.latency_ms)
        return Reply(response, delay_s)

    def _put_events(
        self, request: Request, injected: Injected | None, faults: Faults, delay_s: float
    ) -> Response:
        """Check and answer one PutEvents call; accepted events go to the events file.

        Their `acceptedAt` is when the answer leaves: now plus the injected latency `delay_s`
        (the moment `HttpProtocol` is scheduled to write it), as a client sees the call end.
        """
        stats = self.stats
        auth_error = check_signature(request.headers) or _unknown_key(request.headers, faults)
        if auth_error is not None:
            stats.auth_failures += 1
            return error_response(403, *auth_error)
        if injected is not None:
            status, code, message = _INJECTED[injected]
            if injected is Injected.ACCESS_DENIED:
                stats.access_denied += 1
            elif injected is Injected.THROTTLE:
                stats.throttled += 1
            else:
                stats.errors_5xx += 1
            return error_response(status, code, message)
        try:
            body = _decode(request.body.decode("utf-8"))
        except ValueError:  # Includes UnicodeDecodeError.
            body = None
        if not isinstance(body, dict):
            stats.serialization_errors += 1
            return error_response(
                400, "SerializationException", "Request body is not a JSON object"
            )
        problems = [v.message for v in validate_put_events(body)]
        if not problems and faults.tracking_ids and body["trackingId"] not in faults.tracking_ids:
            stats.unknown_trackers += 1
            return error_response(404, "ResourceNotFoundException", "Event tracker not found")
        if not problems and faults.reject_event_types:
            problems = _rejected_event_types(body["eventList"], faults.reject_event_types)
        if problems:
            stats.rejected_calls += 1
            count = len(problems)
            shown = "; ".join(problems[:_MAX_VIOLATIONS_IN_MESSAGE])
            more = "; ..." if count > _MAX_VIOLATIONS_IN_MESSAGE else ""
            plural = "s" if count > 1 else ""
            message = f"{count} validation error{plural} detected: {shown}{more}"
            return error_response(400, "InvalidInputException", message)
        events = body["eventList"]
        stats.accepted_calls += 1
        stats.accepted_events += len(events)
        if self.events_file is not None:
            self.events_file.append(
                body["trackingId"],
                body.get("userId"),
                body["sessionId"],
                events,
                accepted_at=time.time() + delay_s,
            )
        return Response(200, b"{}", (_request_id(),))

    def _admin(self, request: Request) -> Response:
        route = (request.method, request.path[len(ADMIN_PREFIX) :].rstrip("/"))
        if route == ("GET", "faults"):
            return _json_response(self.faults.as_dict())
        if route == ("POST", "faults"):
            return self._admin_set_faults(request.body)
        if route == ("GET", "stats"):
            return _json_response(self.stats.as_dict())
        if route == ("POST", "stats/reset"):
            self.stats = Stats()
            return _json_response(self.stats.as_dict())
        if route == ("POST", "flush"):
            self.flush()
            return _json_response({"flushed": self.events_file is not None})
        if route == ("GET", "health"):
            return _json_response({"status": "ok"})
        return error_response(404, "NotFound", "Unknown emulator admin route")

    def _admin_set_faults(self, raw: bytes) -> Response:
        try:
            changes = _decode(raw.decode("utf-8") or "{}")
        except ValueError:
            changes = None
        if not isinstance(changes, dict):
            return error_response(400, "SerializationException", "Body must be a JSON object")
        try:
            faults = self.update_faults(changes)
        except FaultError as error:
            return error_response(400, "InvalidInputException", str(error))
        return _json_response(faults.as_dict())
