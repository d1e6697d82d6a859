"""What the emulated endpoint answers: the five `personalize-events` operations as AWS does
(PutEvents, PutItems, PutUsers, PutActions, PutActionInteractions), plus the `/_emulator/` admin
API.

Errors follow the rest-json convention botocore parses: the code in `x-amzn-ErrorType`, the
text in a JSON `message`. Faults apply to all five operations alike (a consumer must survive
them on any of them); the admin API always answers. Everything here runs on the event loop
thread, except `update_faults`, which may be called from any thread.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from consumer.testing.emulator.auth import check_signature, unknown_key
from consumer.testing.emulator.events_file import EventsFile
from consumer.testing.emulator.faults import FaultDraw, FaultError, Faults, Injected
from consumer.testing.emulator.http import Reply, Request, Response
from consumer.testing.emulator.operations import Operation, routes

ADMIN_PREFIX = "/_emulator/"
_MAX_VIOLATIONS_IN_MESSAGE = 10


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_decode = json.JSONDecoder(parse_constant=_reject_constant).decode


@dataclass(slots=True)
class Stats:
    """Counters. `requests` counts every non-admin request; each also lands in exactly one
    outcome counter: all the others but the `accepted_<entries>` ones, `delayed_calls` and
    `latency_injected_ms`. `accepted_calls` counts accepted calls of every operation; each
    `accepted_<entries>` counts the entries of one operation (`accepted_events`: PutEvents)."""

    requests: int = 0
    accepted_calls: int = 0
    accepted_events: int = 0
    accepted_items: int = 0
    accepted_users: int = 0
    accepted_actions: int = 0
    accepted_action_interactions: int = 0
    rejected_calls: int = 0  # InvalidInputException: the body broke one of its operation's rules.
    serialization_errors: int = 0  # Body was not a JSON object.
    auth_failures: int = 0  # No signature, or one by an access key the account lacks.
    unknown_operations: int = 0
    outage_refusals: int = 0
    access_denied: int = 0
    unknown_trackers: int = 0  # PutEvents, PutActionInteractions for a tracker not in the list.
    unknown_datasets: int = 0  # PutItems, PutUsers, PutActions for a dataset not in the list.
    throttled: int = 0
    errors_5xx: int = 0
    delayed_calls: int = 0  # Calls answered after injected latency (any outcome).
    latency_injected_ms: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


_STATS_FIELDS = frozenset(f.name for f in fields(Stats))


def error_response(status: int, code: str, message: str) -> Response:
    body = json.dumps({"message": message}).encode()
    return Response(status, body, (("x-amzn-ErrorType", code), _request_id()))


_REQUEST_ID_BASE = str(uuid.uuid4())[:-12]  # UUID-shaped ids; the counter is cheaper than uuid4.
_request_ids = itertools.count(1)


def _request_id() -> tuple[str, str]:
    return ("x-amzn-RequestId", f"{_REQUEST_ID_BASE}{next(_request_ids):012x}")


def _json_response(payload: Mapping[str, Any]) -> Response:
    return Response(200, json.dumps(payload).encode())


#: Injected answers; AccessDenied's message gets the operation's name appended.
_INJECTED: dict[Injected, tuple[int, str, str]] = {
    Injected.ACCESS_DENIED: (
        403,
        "AccessDeniedException",
        "User is not authorized to perform: personalize:",
    ),
    Injected.THROTTLE: (400, "ThrottlingException", "Rate exceeded"),
    Injected.INTERNAL_ERROR: (500, "InternalServerError", "Internal server error"),
    Injected.UNAVAILABLE: (503, "ServiceUnavailable", "Service unavailable"),
}


def _rejected_event_types(
    entries_key: str, entries: list[dict[str, Any]], rejected: tuple[str, ...]
) -> list[str]:
    """The `reject_event_types` fault: one message per matching event (or action interaction),
    naming its position only (the value is never echoed back, like the service's own messages
    about sensitive fields)."""
    return [
        f"{entries_key}[{i}].eventType: is not accepted for this event tracker"
        for i, entry in enumerate(entries)
        if entry.get("eventType") in rejected
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
        self._routes = routes()
        if unknown := {op.accepted_counter for op in self._routes.values()} - _STATS_FIELDS:
            raise RuntimeError(f"Stats lacks counters {sorted(unknown)}")

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
        operation = self._routes.get((request.method, request.path))
        if operation is None:
            stats.unknown_operations += 1
            return Reply(error_response(404, "UnknownOperationException", "Unknown operation"))
        faults = self.faults
        injected = self._draw.draw(faults)
        if injected is Injected.OUTAGE:
            stats.outage_refusals += 1
            return Reply(None)
        delay_s = faults.latency_ms / 1000.0 if faults.latency_ms > 0 else 0.0
        response = self._call(operation, request, injected, faults, delay_s)
        if delay_s <= 0:
            return Reply(response)
        stats.delayed_calls += 1
        stats.latency_injected_ms += round(faults.latency_ms)
        return Reply(response, delay_s)

    def _call(
        self,
        operation: Operation,
        request: Request,
        injected: Injected | None,
        faults: Faults,
        delay_s: float,
    ) -> Response:
        """Check and answer one call; its accepted entries go to the events file.

        Their `acceptedAt` is when the answer leaves: now plus the injected latency `delay_s`
        (the moment `HttpProtocol` is scheduled to write it), as a client sees the call end.
        """
        stats = self.stats
        auth_error = check_signature(request.headers) or unknown_key(
            request.headers, faults.access_keys
        )
        if auth_error is not None:
            stats.auth_failures += 1
            return error_response(403, *auth_error)
        if injected is not None:
            status, code, message = _INJECTED[injected]
            if injected is Injected.ACCESS_DENIED:
                stats.access_denied += 1
                message += operation.name
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
        problems = [v.message for v in operation.validate(body)]
        if not problems:
            not_found = self._not_found(operation, body[operation.target_key], faults)
            if not_found is not None:
                return not_found
            if faults.reject_event_types and operation.to_tracker:
                entries_key = operation.entries_key
                problems = _rejected_event_types(
                    entries_key, body[entries_key], faults.reject_event_types
                )
        if problems:
            stats.rejected_calls += 1
            count = len(problems)
            shown = "; ".join(problems[:_MAX_VIOLATIONS_IN_MESSAGE])
            more = "; ..." if count > _MAX_VIOLATIONS_IN_MESSAGE else ""
            plural = "s" if count > 1 else ""
            message = f"{count} validation error{plural} detected: {shown}{more}"
            return error_response(400, "InvalidInputException", message)
        self._accept(operation, body, time.time() + delay_s)
        return Response(200, b"{}", (_request_id(),))

    def _not_found(self, operation: Operation, target: Any, faults: Faults) -> Response | None:
        """The `tracking_ids` and `dataset_arns` faults: a tracker or dataset the account lacks."""
        if operation.to_tracker:
            if faults.tracking_ids and target not in faults.tracking_ids:
                self.stats.unknown_trackers += 1
                return error_response(404, "ResourceNotFoundException", "Event tracker not found")
        elif faults.dataset_arns and target not in faults.dataset_arns:
            self.stats.unknown_datasets += 1
            return error_response(404, "ResourceNotFoundException", "Dataset not found")
        return None

    def _accept(self, operation: Operation, body: dict[str, Any], accepted_at: float) -> None:
        """Count a valid call and record its entries; PutEvents keeps its own line format."""
        stats = self.stats
        entries = body[operation.entries_key]
        stats.accepted_calls += 1
        if operation.name == "PutEvents":
            stats.accepted_events += len(entries)
            if self.events_file is not None:
                self.events_file.append(
                    body["trackingId"],
                    body.get("userId"),
                    body["sessionId"],
                    entries,
                    accepted_at=accepted_at,
                )
            return
        counter = operation.accepted_counter
        setattr(stats, counter, getattr(stats, counter) + len(entries))
        if self.events_file is not None:
            self.events_file.append_entries(
                operation.name,
                operation.target_key,
                body[operation.target_key],
                entries,
                accepted_at=accepted_at,
            )

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
