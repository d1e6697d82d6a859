"""Faults injected into the emulator (throttling, 5xx, outages, access denied, latency, rejected
event types), set in process or through the admin API, and the order they apply in."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest

from consumer.testing.emulator import EmulatorServer, FaultError, Faults
from tests.testing.emulator.server_support import (
    error_code,
    event,
    make_client,
    put,
    raw_request,
)

# --- faults ---------------------------------------------------------------------------------


def test_throttling(server: EmulatorServer, client: Any) -> None:
    server.set_faults(throttle_ratio=1.0)
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        put(client)
    assert error_code(caught.value) == "ThrottlingException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert server.stats()["throttled"] == 1


def test_server_errors(server: EmulatorServer, client: Any) -> None:
    server.set_faults(error_5xx_ratio=1.0)
    seen: set[tuple[int, str]] = set()
    for _ in range(12):  # Seeded draw: both kinds show up well within 12 calls.
        with pytest.raises(botocore.exceptions.ClientError) as caught:
            put(client)
        status = caught.value.response["ResponseMetadata"]["HTTPStatusCode"]
        seen.add((status, error_code(caught.value)))
    assert seen == {(500, "InternalServerError"), (503, "ServiceUnavailable")}
    assert server.stats()["errors_5xx"] == 12


def test_outage_closes_the_connection(server: EmulatorServer, client: Any) -> None:
    put(client)  # A pooled keep-alive connection now exists; the outage must break it too.
    server.set_faults(outage=True)
    with pytest.raises(botocore.exceptions.ConnectionClosedError):
        put(client)
    with pytest.raises(botocore.exceptions.ConnectionClosedError):
        put(make_client(server.url))  # And a fresh connection.
    assert server.stats()["outage_refusals"] == 2
    server.set_faults(outage=False)
    put(client)  # Recovers without restarting anything.


def test_access_denied(server: EmulatorServer, client: Any) -> None:
    server.set_faults(access_denied=True)
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        put(client)
    assert error_code(caught.value) == "AccessDeniedException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_an_access_key_the_account_does_not_have_is_unrecognized(
    server: EmulatorServer, client: Any
) -> None:
    server.set_faults(access_keys=["rotated"])  # the client signs as "testing"
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        put(client)
    assert error_code(caught.value) == "UnrecognizedClientException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert server.stats()["auth_failures"] == 1
    server.set_faults(access_keys=["rotated", "testing"])
    put(client)


def test_a_tracker_the_account_does_not_have_is_not_found_after_validation(
    server: EmulatorServer, client: Any
) -> None:
    server.set_faults(tracking_ids=["tracking-1"])
    put(client)
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        put(client, trackingId="deleted")
    assert error_code(caught.value) == "ResourceNotFoundException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    unchecked = make_client(server.url, parameter_validation=False)
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        put(unchecked, event(eventType=""), trackingId="deleted")
    assert error_code(caught.value) == "InvalidInputException"  # bad input is reported first
    assert server.stats()["unknown_trackers"] == 1


def test_latency_is_injected_without_blocking_other_calls(server: EmulatorServer) -> None:
    server.set_faults(latency_ms=400)
    clients = [make_client(server.url) for _ in range(3)]  # Built first: slow to make.
    spans: list[tuple[float, float]] = []

    def call(each: Any) -> None:
        started = time.monotonic()
        put(each)
        spans.append((started, time.monotonic()))

    threads = [threading.Thread(target=call, args=(each,)) for each in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert min(end - start for start, end in spans) >= 0.4  # each answer was held back
    # Every call began before any answer came: one call's delay does not hold up the others.
    assert max(start for start, _ in spans) < min(end for _, end in spans)
    stats = server.stats()
    assert (stats["delayed_calls"], stats["latency_injected_ms"]) == (3, 1200)


def test_faults_change_mid_run(server: EmulatorServer, client: Any) -> None:
    put(client)
    server.set_faults(throttle_ratio=1.0)
    with pytest.raises(botocore.exceptions.ClientError):
        put(client)
    # Through the admin API too, as a test in another process would do it.
    status, _, faults = raw_request(server, "POST", "/_emulator/faults", b'{"throttle_ratio": 0}')
    assert status == 200
    assert faults["throttle_ratio"] == 0
    put(client)
    stats = server.stats()
    assert (stats["accepted_calls"], stats["throttled"]) == (2, 1)


def test_set_faults_rejects_bad_values(server: EmulatorServer) -> None:
    with pytest.raises(FaultError):
        server.set_faults(throttle_ratio=2)
    with pytest.raises(FaultError):
        server.set_faults(no_such_fault=True)
    assert server.faults == Faults()


def test_rejected_event_type_rejects_the_whole_call_naming_the_position_only(
    server: EmulatorServer, client: Any, events_path: Path
) -> None:
    server.set_faults(reject_event_types=["Poison", "Toxic"])
    properties = json.dumps({"secret": "property-value-9"})
    events = [
        event(itemId="item-secret-1"),
        event(eventType="Poison", itemId="item-secret-2", properties=properties),
        event(eventType="poison"),  # Event types are case-sensitive: this one is fine.
        event(eventType="Toxic"),
    ]
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        put(client, *events, userId="user-secret-7")

    assert error_code(caught.value) == "InvalidInputException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    message = caught.value.response["Error"]["Message"]
    assert "eventList[1].eventType" in message and "eventList[3].eventType" in message
    assert "eventList[0]" not in message and "eventList[2]" not in message
    for secret in ("user-secret-7", "item-secret", "property-value-9", "Poison", "Toxic"):
        assert secret not in message
    server.flush()
    assert not events_path.exists() or events_path.read_text() == ""  # None of the 4 accepted.
    stats = server.stats()
    assert (stats["rejected_calls"], stats["accepted_calls"], stats["accepted_events"]) == (1, 0, 0)


def test_rejected_event_type_spares_calls_without_it_and_can_be_cleared(
    server: EmulatorServer, client: Any
) -> None:
    server.set_faults(reject_event_types=["Poison"])
    put(client, event(), event(eventType="Purchase"))
    with pytest.raises(botocore.exceptions.ClientError):
        put(client, event(eventType="Poison"))
    server.set_faults(reject_event_types=[])
    put(client, event(eventType="Poison"))
    stats = server.stats()
    assert (stats["accepted_calls"], stats["accepted_events"], stats["rejected_calls"]) == (2, 3, 1)


def test_validation_errors_come_before_rejected_event_types(server: EmulatorServer) -> None:
    server.set_faults(reject_event_types=["Poison"])
    client = make_client(server.url, parameter_validation=False)
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        put(client, event(eventType="Poison"), userId="u" * 257)
    message = caught.value.response["Error"]["Message"]
    assert "userId" in message and "eventType" not in message


def test_injected_faults_come_before_rejected_event_types(
    server: EmulatorServer, client: Any
) -> None:
    server.set_faults(reject_event_types=["Poison"], throttle_ratio=1.0)
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        put(client, event(eventType="Poison"))
    assert error_code(caught.value) == "ThrottlingException"


@pytest.mark.parametrize(
    "value",
    ["Poison", [""], [1], None, {"Poison": True}],
    ids=["str", "empty", "int", "null", "dict"],
)
def test_set_faults_rejects_bad_event_type_lists(server: EmulatorServer, value: Any) -> None:
    with pytest.raises(FaultError, match="reject_event_types"):
        server.set_faults(reject_event_types=value)
    assert server.faults.reject_event_types == ()


def test_admin_sets_rejected_event_types(server: EmulatorServer, client: Any) -> None:
    change = json.dumps({"reject_event_types": ["Poison"]}).encode()
    status, _, faults = raw_request(server, "POST", "/_emulator/faults", change)
    assert (status, faults["reject_event_types"]) == (200, ["Poison"])
    assert server.faults == Faults(reject_event_types=("Poison",))
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        put(client, event(), event(eventType="Poison"))
    assert "eventList[1].eventType" in caught.value.response["Error"]["Message"]
    bad = json.dumps({"reject_event_types": "Poison"}).encode()
    status, headers, body = raw_request(server, "POST", "/_emulator/faults", bad)
    assert (status, headers["x-amzn-errortype"]) == (400, "InvalidInputException")
    assert "reject_event_types" in body["message"]
    assert raw_request(server, "GET", "/_emulator/faults")[2]["reject_event_types"] == ["Poison"]
