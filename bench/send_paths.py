"""CPU per PutEvents call of two ways to send: `python bench/send_paths.py --help`.

The service's `CrtClient` (awscrt: its event-loop thread does the I/O and calls into Python four
times per call) against a prototype that does the I/O on the calling thread with the standard
library's non-blocking `ssl` sockets and a selector: no second thread, so no GIL hand-over. Both
sign with the service's `SigV4`, keep the same number of calls in flight over keep-alive
connections, and send the same 8-event body to the local endpoint over HTTPS (20 ms).

It measures the next step named in bench/README.md; it is not a client. The prototype has no
proxy, no timeouts, no reconnection and no error handling: what a real one would need is what
`crt.py` and `wire.py` do today. Rounds alternate between the two in one process, because this
VM's speed drifts between runs.

`--serial N` measures the other thing that bounds the consumer: how long one call takes when it
is the only one out and the caller does nothing else, N calls one after another per client. That
is the floor under a session's chain of calls (one in flight per session), so under `dense`'s
busiest session and the naive ratio.
"""

from __future__ import annotations

import argparse
import os
import resource
import selectors
import socket
import ssl
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from common import log
from endpoint import Endpoint

from consumer.send.crt import CrtClient
from consumer.send.sigv4 import SigV4
from consumer.send.wire import Boto3Config, encode_request

BODY = encode_request(
    {
        "trackingId": "bench-tracker",
        "userId": "user-1",
        "sessionId": "session-1",
        "eventList": [
            {
                "eventId": f"5d2b6f1e-0c4a-5b7e-9f3d-{i:012d}",
                "eventType": "click",
                "sentAt": 1_700_000_000 + i,
                "itemId": f"item-{i}",
                "properties": '{"color": "red", "size": "M"}',
            }
            for i in range(8)
        ],
    }
)


class Client(Protocol):
    def send(self, body: bytes, tag: int) -> None: ...
    def drain(self, timeout_s: float) -> list[object]: ...


class InThread:
    """Keep-alive TLS connections driven from the calling thread (the prototype)."""

    def __init__(self, url: str, ca_file: str | None, connections: int, signer: SigV4) -> None:
        parts = urlsplit(url)
        self._host, self._path = parts.hostname or "", parts.path or "/"
        self._signer = signer
        context = ssl.create_default_context(cafile=ca_file)
        self._selector = selectors.DefaultSelector()
        self._idle: list[ssl.SSLSocket] = []
        self._waiting: deque[tuple[bytes, int]] = deque()
        for _ in range(connections):
            raw = socket.create_connection((self._host, parts.port or 443))
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            tls = context.wrap_socket(raw, server_hostname=self._host)
            tls.setblocking(False)
            self._idle.append(tls)

    def send(self, body: bytes, tag: int) -> None:
        if self._idle:
            self._start(self._idle.pop(), body, tag)
        else:
            self._waiting.append((body, tag))

    def _start(self, tls: ssl.SSLSocket, body: bytes, tag: int) -> None:
        headers = self._signer.headers(body, "bench", "bench", None, time.time(), self._path)
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        request = (
            f"POST {self._path} HTTP/1.1\r\n{head}Content-Length: {len(body)}\r\n"
            "User-Agent: send-paths\r\n\r\n"
        ).encode() + body
        if tls.send(request) != len(request):  # a 2 KB request fits the socket's buffer
            raise RuntimeError("short write: the prototype does not handle it")
        self._selector.register(tls, selectors.EVENT_READ, [tag, b""])

    def drain(self, timeout_s: float) -> list[object]:
        answered: list[object] = []
        for key, _ in self._selector.select(timeout_s):
            tls = key.fileobj
            assert isinstance(tls, ssl.SSLSocket)
            try:
                key.data[1] += tls.recv(65536)
            except ssl.SSLWantReadError:
                continue
            data: bytes = key.data[1]
            end = data.find(b"\r\n\r\n")
            if end < 0:
                continue
            at = data.lower().find(b"content-length:", 0, end)
            if len(data) < end + 4 + int(data[at + 15 : data.find(b"\r\n", at)]):
                continue
            if data[9:12] != b"200":
                raise RuntimeError(f"the endpoint answered {data[:12]!r}")
            self._selector.unregister(tls)
            answered.append(key.data[0])
            if self._waiting:
                self._start(tls, *self._waiting.popleft())
            else:
                self._idle.append(tls)
        return answered


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread: the CRT's too
    return usage.ru_utime + usage.ru_stime


def _round(client: Client, calls: int, in_flight: int) -> float:
    """CPU µs per call of the whole process over `calls` calls."""
    sent = done = 0
    started = _cpu_s()
    while done < calls:
        while sent < calls and sent - done < in_flight:
            client.send(BODY, sent)
            sent += 1
        done += len(client.drain(0.05))
    return (_cpu_s() - started) / calls * 1e6


def _serial(client: Client, calls: int) -> str:
    """Wall time per call, one call at a time: the floor of a session's chain of calls."""
    times = []
    for tag in range(calls):
        started = time.perf_counter()
        client.send(BODY, tag)
        while not client.drain(1.0):
            pass
        times.append(time.perf_counter() - started)
    times.sort()
    mean, p50, p90 = sum(times) / calls, times[calls // 2], times[calls * 9 // 10]
    return f"mean {mean * 1e3:5.2f} ms, p50 {p50 * 1e3:5.2f}, p90 {p90 * 1e3:5.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=4000, help="calls per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--in-flight", type=int, default=32, help="also the connections")
    parser.add_argument(
        "--serial", type=int, default=0, metavar="N", help="instead: N calls one at a time"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        endpoint = Endpoint(20.0, None, Path(tmp) / "emulator.log", Path(tmp))
        try:
            os.environ.update(
                AWS_ENDPOINT_URL_PERSONALIZE_EVENTS=endpoint.url,
                AWS_ACCESS_KEY_ID="bench",
                AWS_SECRET_ACCESS_KEY="bench",
                AWS_CA_BUNDLE=str(endpoint.ca_file),
            )
            config = Boto3Config("us-east-1")
            url, region = config.endpoint.url, config.endpoint.region
            signer = SigV4(url, region, config.endpoint.signing_name)
            clients: dict[str, Client] = {
                "awscrt (CrtClient)": CrtClient(config, args.in_flight),
                "in-thread ssl": InThread(url, str(endpoint.ca_file), args.in_flight, signer),
            }
            for client in clients.values():
                _round(client, 500, args.in_flight)  # connections open, code warm
            if args.serial:
                log(f"{args.rounds} rounds of {args.serial:,} calls one at a time")
                for _ in range(args.rounds):
                    for name, client in clients.items():
                        print(f"{name:20s} {_serial(client, args.serial)}")
                return 0
            log(f"{args.rounds} rounds of {args.calls:,} calls of {len(BODY):,} bytes each")
            for _ in range(args.rounds):
                for name, client in clients.items():
                    print(f"{name:20s} {_round(client, args.calls, args.in_flight):5.0f} µs/call")
        finally:
            endpoint.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
