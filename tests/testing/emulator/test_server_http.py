"""The emulator's HTTP surface beyond PutEvents: the admin API, HTTP/1.1 details on raw sockets
(pipelining, 100-continue, malformed requests), and the command line serving until SIGTERM."""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest

from consumer.testing.emulator import EmulatorServer
from tests.testing.emulator.server_support import (
    SIGNED_HEADERS,
    error_code,
    event,
    make_client,
    put,
    raw_request,
    wait_until,
)

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
        "access_keys": [],
        "tracking_ids": [],
        "dataset_arns": [],
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
