"""The emulator over HTTPS, as production calls AWS: a boto3 client that trusts the local CA
(`verify=` or `AWS_CA_BUNDLE`) is served and recorded, one that does not is refused, and the
command line with `--tls` says where the CA is."""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest

from consumer.testing.emulator import EmulatorServer
from consumer.testing.tls import SERVER_NAMES
from tests.testing.emulator.server_support import event, make_client, put, wait_until


def test_urls_and_ca_file(
    server: EmulatorServer, tls_server: EmulatorServer, tls_dir: Path
) -> None:
    assert server.url.startswith("http://127.0.0.1:")
    assert server.ca_file is None
    assert tls_server.url == f"https://127.0.0.1:{tls_server.port}"
    assert tls_server.ca_file == tls_dir / "ca.pem"
    assert tls_server.ca_file.read_text().startswith("-----BEGIN CERTIFICATE-----")


def test_client_trusting_the_ca_is_accepted_and_recorded(
    tls_server: EmulatorServer, events_path: Path
) -> None:
    client = make_client(tls_server.url, verify=str(tls_server.ca_file))
    response = put(client, event(), event(eventType="buy"))

    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    put(client)  # again on the kept-alive TLS connection
    wait_until(lambda: events_path.exists() and len(events_path.read_text().splitlines()) == 3)
    recorded = [json.loads(line) for line in events_path.read_text().splitlines()]
    assert [e["eventType"] for e in recorded] == ["click", "buy", "click"]
    stats = tls_server.stats()
    assert (stats["accepted_calls"], stats["accepted_events"]) == (2, 3)


def test_ca_bundle_from_the_standard_env_var(
    tls_server: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_PERSONALIZE_EVENTS", tls_server.url)
    monkeypatch.setenv("AWS_CA_BUNDLE", str(tls_server.ca_file))
    put(make_client(None))
    assert tls_server.stats()["accepted_calls"] == 1


def test_client_not_trusting_the_ca_gets_an_ssl_error(
    tls_server: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_CA_BUNDLE", raising=False)
    with pytest.raises(botocore.exceptions.SSLError):
        put(make_client(tls_server.url))  # the system's CAs only
    assert tls_server.stats()["accepted_calls"] == 0


def _handshake(server: EmulatorServer, server_hostname: str) -> str | None:
    """TLS to 127.0.0.1 checking the certificate for `server_hostname`; the version agreed."""
    context = ssl.create_default_context(cafile=server.ca_file)
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=server_hostname) as tls,
    ):
        return tls.version()


def test_certificate_names_every_local_address(tls_server: EmulatorServer) -> None:
    names = [name.partition(":")[2] for name in SERVER_NAMES]
    assert {"127.0.0.1", "::1", "localhost"} <= set(names)
    for name in names:
        assert _handshake(tls_server, name) in ("TLSv1.2", "TLSv1.3"), name
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(tls_server, "example.com")


def test_plain_http_to_the_tls_port_gets_no_answer(tls_server: EmulatorServer) -> None:
    with socket.create_connection(("127.0.0.1", tls_server.port), timeout=10) as sock:
        sock.sendall(b"GET /_emulator/health HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):  # the server closes on a failed handshake
            data += chunk
    assert not data.startswith(b"HTTP/")


# --- command line ---------------------------------------------------------------------------


def _read_lines(process: subprocess.Popen[bytes], count: int, timeout: float = 20.0) -> list[str]:
    """The first `count` lines of stdout, with one deadline overall. Raw reads, not `readline`:
    a buffered reader may hold the second line where `select` cannot see it."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    deadline = time.monotonic() + timeout
    data = b""
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while data.count(b"\n") < count:
            left = deadline - time.monotonic()
            assert left > 0 and selector.select(timeout=left), f"emulator printed only {data!r}"
            chunk = os.read(fd, 4096)
            assert chunk, f"emulator exited after {data!r}"
            data += chunk
    return data.decode().splitlines()[:count]


def test_command_line_with_tls_prints_the_ca_and_serves_https(tmp_path: Path) -> None:
    events_file = tmp_path / "cli-events.jsonl"
    command = [sys.executable, "-m", "consumer.testing.emulator", "--port", "0", "--tls"]
    command += ["--events-file", str(events_file)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(command, stdout=subprocess.PIPE, env=env) as process:
        try:
            listening, bundle = _read_lines(process, 2)
            assert listening.startswith("emulator listening on https://127.0.0.1:")
            assert bundle.startswith("emulator CA bundle: ")
            url, ca_file = listening.rsplit(" ", 1)[1], Path(bundle.rsplit(" ", 1)[1])
            assert ca_file.is_file()
            client: Any = make_client(url, verify=str(ca_file))
            put(client)
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=20) == 0
        finally:
            if process.poll() is None:
                process.kill()
    assert len(events_file.read_text().splitlines()) == 1
    assert not ca_file.parent.exists(), "the temporary TLS directory outlived the emulator"
