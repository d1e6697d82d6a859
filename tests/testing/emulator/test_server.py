"""The emulator driven over real HTTP by a real boto3 `personalize-events` client."""

from __future__ import annotations

import http.client
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import pytest
from botocore import UNSIGNED
from botocore.config import Config

from consumer.testing.emulator import EmulatorConfig, EmulatorServer, FaultError, Faults

REGION = "us-east-1"
SIGNED_HEADERS = {
    "Authorization": (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/personalize/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=0123abcd"
    ),
    "X-Amz-Date": "20240101T000000Z",
    "Content-Type": "application/json",
}


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll instead of sleeping a fixed time: fast when things work, bounded when not."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        threading.Event().wait(0.01)


def make_client(url: str | None, **config: Any) -> Any:
    # total_max_attempts=1: no retries. Note `max_attempts` counts retries, not attempts.
    options: dict[str, Any] = {"retries": {"total_max_attempts": 1}, "read_timeout": 10}
    options.update(config)
    return boto3.session.Session().client(
        "personalize-events",
        region_name=REGION,
        endpoint_url=url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(**options),
    )


def event(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"eventType": "click", "sentAt": datetime.now(UTC), "itemId": "item-1"}
    base.update(changes)
    return base


def put(client: Any, *events: dict[str, Any], **request: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "trackingId": "tracking-1",
        "userId": "user-1",
        "sessionId": "s-1",
        "eventList": list(events or [event()]),
    }
    params.update(request)
    result: dict[str, Any] = client.put_events(**params)
    return result


def raw_request(
    server: EmulatorServer,
    method: str,
    path: str,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
) -> tuple[int, dict[str, str], Any]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=dict(headers or {}))
        response = connection.getresponse()
        payload = json.loads(response.read() or b"null")
        return response.status, {k.lower(): v for k, v in response.getheaders()}, payload
    finally:
        connection.close()


@pytest.fixture
def events_path(tmp_path: Path) -> Path:
    return tmp_path / "events.jsonl"


@pytest.fixture
def server(events_path: Path) -> Iterator[EmulatorServer]:
    with EmulatorServer(EmulatorConfig(events_file=events_path, seed=7)) as emulator:
        yield emulator


@pytest.fixture
def client(server: EmulatorServer) -> Any:
    return make_client(server.url)


def error_code(error: botocore.exceptions.ClientError) -> str:
    return str(error.response["Error"]["Code"])


# --- PutEvents ------------------------------------------------------------------------------


def test_valid_call_is_accepted_and_recorded(
    server: EmulatorServer, client: Any, events_path: Path
) -> None:
    properties = json.dumps({"color": "red"})
    response = put(client, event(properties=properties), event(eventType="buy", eventValue=9.5))

    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert response["ResponseMetadata"]["RequestId"]
    # No explicit flush: the periodic flush must get the lines there on its own.
    wait_until(lambda: events_path.exists() and len(events_path.read_text().splitlines()) == 2)
    first, second = (json.loads(line) for line in events_path.read_text().splitlines())
    assert first["trackingId"] == "tracking-1"
    assert first["userId"] == "user-1"
    assert first["sessionId"] == "s-1"
    assert first["properties"] == properties
    assert isinstance(first["sentAt"], int | float)
    assert second["eventValue"] == 9.5
    stats = server.stats()
    assert (stats["accepted_calls"], stats["accepted_events"]) == (1, 2)


def test_endpoint_from_standard_env_var(
    server: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_PERSONALIZE_EVENTS", server.url)
    put(make_client(None))
    assert server.stats()["accepted_calls"] == 1


def test_stop_flushes_events_file(events_path: Path) -> None:
    emulator = EmulatorServer(EmulatorConfig(events_file=events_path))
    emulator.start()
    put(make_client(emulator.url), event(), event())
    emulator.stop()
    assert len(events_path.read_text().splitlines()) == 2
    assert emulator.stats()["accepted_events"] == 2  # Final counts stay readable.
    emulator.flush()  # A no-op once stopped, not an error.


@pytest.mark.parametrize(
    ("request_changes", "field"),
    [
        ({"eventList": [event(properties=json.dumps({"userId": "u"}))]}, "eventList[0].properties"),
        ({"eventList": [event(properties="not json")]}, "eventList[0].properties"),
        (
            {"eventList": [event(sentAt=datetime.now(UTC) + timedelta(days=3))]},
            "eventList[0].sentAt",
        ),
        ({"userId": "u" * 257}, "userId"),
        ({"eventList": [event()] * 11}, "eventList"),
    ],
    ids=["reserved_key", "properties_not_json", "sent_at_future", "user_id_too_long", "11_events"],
)
def test_invalid_input_names_the_field(
    server: EmulatorServer, request_changes: dict[str, Any], field: str
) -> None:
    # Client-side validation off, so the emulator (not botocore) is what rejects the call.
    client = make_client(server.url, parameter_validation=False)
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        put(client, **request_changes)
    assert error_code(caught.value) == "InvalidInputException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert field in caught.value.response["Error"]["Message"]
    assert server.stats()["rejected_calls"] == 1


def test_malformed_json_is_rejected(server: EmulatorServer) -> None:
    status, headers, body = raw_request(server, "POST", "/events", b"{nope", SIGNED_HEADERS)
    assert status == 400
    assert headers["x-amzn-errortype"] == "SerializationException"
    assert body["message"]


def test_unknown_member_is_rejected(server: EmulatorServer) -> None:
    payload: dict[str, Any] = {
        "trackingId": "t",
        "sessionId": "s",
        "eventList": [{"eventType": "x", "sentAt": 1}],
        "extra": 1,
    }
    status, headers, body = raw_request(
        server, "POST", "/events", json.dumps(payload).encode(), SIGNED_HEADERS
    )
    assert (status, headers["x-amzn-errortype"]) == (400, "InvalidInputException")
    assert "extra" in body["message"]


def test_sent_at_in_milliseconds_is_rejected(server: EmulatorServer) -> None:
    # boto3 cannot even serialize epoch milliseconds (year out of range), so send JSON directly.
    event_ms = {"eventType": "click", "sentAt": int(time.time() * 1000)}
    payload = {"trackingId": "t", "sessionId": "s", "eventList": [event_ms]}
    status, headers, body = raw_request(
        server, "POST", "/events", json.dumps(payload).encode(), SIGNED_HEADERS
    )
    assert (status, headers["x-amzn-errortype"]) == (400, "InvalidInputException")
    assert "eventList[0].sentAt" in body["message"]
    assert "milliseconds" in body["message"]


# --- signature and routing ------------------------------------------------------------------


def test_missing_signature_is_rejected(server: EmulatorServer) -> None:
    status, headers, body = raw_request(server, "POST", "/events", b"{}")
    assert status == 403
    assert headers["x-amzn-errortype"] == "MissingAuthenticationTokenException"
    assert body == {"message": "Missing Authentication Token"}
    assert server.stats()["auth_failures"] == 1


def test_unsigned_boto3_call_gets_missing_token_error(server: EmulatorServer) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        put(make_client(server.url, signature_version=UNSIGNED))
    assert error_code(caught.value) == "MissingAuthenticationTokenException"


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        ("AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/personalize/aws4_request",
         "IncompleteSignatureException"),
        ("Bearer abc", "IncompleteSignatureException"),
        (SIGNED_HEADERS["Authorization"].replace("/personalize/", "/s3/"),
         "InvalidSignatureException"),
    ],
    ids=["no_signature_params", "not_sigv4", "wrong_service_scope"],
)  # fmt: skip
def test_bad_signature_is_rejected(server: EmulatorServer, authorization: str, code: str) -> None:
    headers = {**SIGNED_HEADERS, "Authorization": authorization}
    status, response_headers, _ = raw_request(server, "POST", "/events", b"{}", headers)
    assert (status, response_headers["x-amzn-errortype"]) == (403, code)


def test_missing_date_is_incomplete_signature(server: EmulatorServer) -> None:
    authorization = SIGNED_HEADERS["Authorization"]
    status, response_headers, body = raw_request(
        server, "POST", "/events", b"{}", {"Authorization": authorization}
    )
    assert (status, response_headers["x-amzn-errortype"]) == (403, "IncompleteSignatureException")
    assert "X-Amz-Date" in body["message"]


def test_other_operations_are_unknown(server: EmulatorServer, client: Any) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        client.put_users(datasetArn="arn:aws:personalize:::dataset/d", users=[{"userId": "u"}])
    assert error_code(caught.value) == "UnknownOperationException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    status, _, body = raw_request(server, "GET", "/nowhere", headers=SIGNED_HEADERS)
    assert status == 404
    assert body["message"]


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


# --- admin API ------------------------------------------------------------------------------


def test_admin_faults_partial_update(server: EmulatorServer) -> None:
    change = json.dumps({"latency_ms": 20, "error_5xx_ratio": 0.1}).encode()
    assert raw_request(server, "POST", "/_emulator/faults", change)[0] == 200
    status, _, faults = raw_request(server, "GET", "/_emulator/faults")
    assert status == 200
    assert faults == {
        "latency_ms": 20,
        "throttle_ratio": 0.0,
        "error_5xx_ratio": 0.1,
        "outage": False,
        "access_denied": False,
        "reject_event_types": [],
    }
    status, headers, body = raw_request(server, "POST", "/_emulator/faults", b'{"outage": "yes"}')
    assert (status, headers["x-amzn-errortype"]) == (400, "InvalidInputException")
    assert "outage" in body["message"]


def test_admin_is_never_faulted(server: EmulatorServer) -> None:
    server.set_faults(outage=True, access_denied=True, latency_ms=5000, throttle_ratio=1.0)
    status, _, stats = raw_request(server, "GET", "/_emulator/stats")
    assert status == 200
    assert stats["requests"] == 0


def test_admin_flush_and_stats_reset(
    server: EmulatorServer, client: Any, events_path: Path
) -> None:
    put(client)
    status, _, body = raw_request(server, "POST", "/_emulator/flush")
    assert (status, body) == (200, {"flushed": True})
    assert len(events_path.read_text().splitlines()) == 1
    assert raw_request(server, "POST", "/_emulator/stats/reset")[2]["accepted_calls"] == 0
    assert server.stats()["accepted_calls"] == 0
    assert raw_request(server, "GET", "/_emulator/nope")[0] == 404


# --- HTTP details ---------------------------------------------------------------------------


def _signed_raw(body: bytes, extra: str = "") -> bytes:
    head = "".join(f"{name}: {value}\r\n" for name, value in SIGNED_HEADERS.items())
    return (
        f"POST /events HTTP/1.1\r\nHost: x\r\n{head}{extra}Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def _read_responses(sock: socket.socket, count: int) -> list[bytes]:
    data = b""
    while data.count(b"HTTP/1.1 ") < count or not data.endswith(b"}"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return [b"HTTP/1.1 " + part for part in data.split(b"HTTP/1.1 ")[1:]]


def test_pipelined_keep_alive_requests(server: EmulatorServer) -> None:
    body = json.dumps(
        {"trackingId": "t", "sessionId": "s", "eventList": [{"eventType": "x", "sentAt": 1}]}
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(_signed_raw(body) * 3)
        responses = _read_responses(sock, 3)
    assert [r.split(b"\r\n", 1)[0] for r in responses] == [b"HTTP/1.1 200 OK"] * 3
    assert server.stats()["accepted_calls"] == 3


def test_expect_100_continue(server: EmulatorServer) -> None:
    body = json.dumps(
        {"trackingId": "t", "sessionId": "s", "eventList": [{"eventType": "x", "sentAt": 1}]}
    ).encode()
    raw = _signed_raw(body, extra="Expect: 100-continue\r\n")
    head, body_part = raw[: -len(body)], raw[-len(body) :]
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head)
        assert sock.recv(1024) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body_part)
        assert _read_responses(sock, 1)[0].startswith(b"HTTP/1.1 200 OK")


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"NONSENSE\r\n\r\n", b"400"),
        (b"POST /events HTTP/1.1\r\nContent-Length: x\r\n\r\n", b"400"),
        (b"POST /events HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", b"501"),
    ],
    ids=["request_line", "content_length", "chunked"],
)
def test_malformed_http_is_answered_and_closed(
    server: EmulatorServer, raw: bytes, status: bytes
) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(raw)
        data = b""
        while chunk := sock.recv(65536):  # The server closes: recv returns b"" at the end.
            data += chunk
    assert data.startswith(b"HTTP/1.1 " + status)
    assert b"Connection: close" in data


def test_client_leaving_during_latency_does_not_break_the_server(server: EmulatorServer) -> None:
    server.set_faults(latency_ms=200)
    body = json.dumps(
        {"trackingId": "t", "sessionId": "s", "eventList": [{"eventType": "x", "sentAt": 1}]}
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(_signed_raw(body))
    wait_until(lambda: server.stats()["delayed_calls"] == 1)
    server.set_faults(latency_ms=0)
    status, _, _ = raw_request(server, "POST", "/events", body, SIGNED_HEADERS)
    assert status == 200


# --- command line ---------------------------------------------------------------------------


def test_command_line_serves_until_sigterm(tmp_path: Path) -> None:
    events_file = tmp_path / "cli-events.jsonl"
    command = [sys.executable, "-m", "consumer.testing.emulator", "--port", "0"]
    command += ["--events-file", str(events_file), "--latency-ms", "1"]
    command += ["--reject-event-type", "Poison", "--reject-event-type", "Toxic"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) as process:
        try:
            assert process.stdout is not None
            with selectors.DefaultSelector() as selector:
                selector.register(process.stdout, selectors.EVENT_READ)
                assert selector.select(timeout=20), "emulator did not report readiness"
                line = process.stdout.readline().strip()
            assert line.startswith("emulator listening on http://127.0.0.1:")
            client = make_client(line.rsplit(" ", 1)[1])
            put(client)
            for rejected in ("Poison", "Toxic"):
                with pytest.raises(botocore.exceptions.ClientError) as caught:
                    put(client, event(), event(eventType=rejected))
                assert error_code(caught.value) == "InvalidInputException"
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=20) == 0
        finally:
            if process.poll() is None:
                process.kill()
    assert len(events_file.read_text().splitlines()) == 1
