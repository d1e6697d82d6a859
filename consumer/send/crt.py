"""PutEvents calls on the AWS Common Runtime (awscrt, as the AWS CLI and s3transfer use it):
native HTTP/1.1 keep-alive connections, TLS by s2n, and no Python thread per call. Requests are
signed by `sigv4.py` (it says why not by awscrt).

A call is signed and started on the poll loop's thread; the runtime's event-loop thread does the
I/O and, once the answer is complete, puts one `Answer` on a queue that `drain` hands to the poll
loop. A connection carries one call at a time; the pool opens connections as calls need them, up to
`max_connections`. awscrt has no read timeout, so `drain` closes the connection of a call that has
waited longer than the endpoint's read timeout, which ends the call as a transient error.

Why not botocore's HTTP session on sender threads, as before: every socket operation there takes
and gives back the GIL, and with 8 to 32 threads each call cost about 1 ms of CPU. Here a call
costs about 0.3 ms, both threads together (bench/README.md has the measurement).
"""

from __future__ import annotations

import ctypes
import io
import logging
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from awscrt import http
from awscrt import io as crt_io
from awscrt.exceptions import AwsCrtError, from_code

from consumer import __version__
from consumer.send.sigv4 import SigV4
from consumer.send.wire import Boto3Config, Endpoint

log = logging.getLogger(__name__)

_USER_AGENT = f"personalize-consumer/{__version__} awscrt"


@dataclass(slots=True)
class Answer:
    """How one call ended: an HTTP answer (`status` > 0), or `error` when none came."""

    tag: Any
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: str = ""  # the runtime's error name: connection refused, closed, TLS, timed out


#: The runtime's threads that keep their Python thread state (`_keep_thread_state`).
_KEPT: set[int] = set()


def _keep_thread_state() -> None:
    """Keep the calling runtime thread's Python thread state for as long as the thread lives.

    awscrt runs each callback in `PyGILState_Ensure`/`PyGILState_Release`. On a thread Python
    did not start, that pair makes a new thread state and frees it again every time, with its
    frame stack, which is an mmap and a munmap. Measured on this machine (6,000 calls of 8
    events, event-loop thread CPU per call): 185 µs over HTTP and 253 over HTTPS, against 82 and
    113 with the state kept. One more `PyGILState_Ensure`, never released, keeps it: the
    runtime's own pairs then only take and give back the GIL. Runs with the GIL held, on the
    runtime's thread; Python frees the state at exit, when awscrt no longer calls back.
    """
    ctypes.pythonapi.PyGILState_Ensure()
    _KEPT.add(threading.get_ident())


class _Exchange(http.HttpClientStream):  # type: ignore[misc]  # awscrt is untyped
    """One call on one connection, as the stream awscrt drives.

    The runtime calls `_on_response`, `_on_body` and `_on_complete` of its stream object itself,
    on its event-loop thread, each time taking the GIL from the busy poll loop. They are
    overridden here: awscrt's own stream class calls user callbacks with keyword arguments from
    them, and completes a `concurrent.futures.Future` whose done-callback would be one more
    Python call. A call still enters Python four times on that thread (reading the request
    body, the response head, its body, completion), each entry now short.
    tests/send/test_delivery_http.py drives this against real servers: an awscrt that renamed
    these methods would fail there, not in production.
    """

    __slots__ = (
        "answers",
        "chunks",
        "conn",
        "deadline",
        "header_pairs",
        "status",
        "tag",
        "timed_out",
    )

    def __init__(
        self,
        conn: http.HttpClientConnection,
        request: http.HttpRequest,
        tag: Any,
        deadline: float,
        answers: queue.SimpleQueue[tuple[str, Any]],
    ) -> None:
        self.tag, self.conn, self.deadline, self.answers = tag, conn, deadline, answers
        self.status = 0
        self.header_pairs: list[tuple[str, str]] = []
        self.chunks: list[bytes] = []
        self.timed_out = False
        self._init_common(conn, request)

    def _on_response(self, status_code: int, name_value_pairs: list[tuple[str, str]]) -> None:
        if threading.get_ident() not in _KEPT:
            _keep_thread_state()
        self.status, self.header_pairs = status_code, name_value_pairs

    def _on_body(self, chunk: bytes) -> None:
        self.chunks.append(bytes(chunk))

    def _on_complete(self, error_code: int) -> None:
        """The last call from the runtime: hand the exchange to the poll loop as it is."""
        self._request = None  # type: ignore[misc]  # a slot of awscrt's: the request may go now
        self.answers.put(("answer", (self, error_code)))

    def answer(self, error_code: int) -> Answer:
        """How the call ended, built on the poll loop's thread (`error_code` 0: an answer)."""
        if error_code:
            error = "read timed out" if self.timed_out else _crt_error(from_code(error_code))
            return Answer(self.tag, error=error)
        if 200 <= self.status < 300:  # the usual answer: its headers and body are not read
            return Answer(self.tag, self.status)
        headers = {k.lower(): v for k, v in self.header_pairs}
        return Answer(self.tag, self.status, headers, b"".join(self.chunks))


class CrtClient:
    """Sends signed PutEvents bodies; `drain` returns the answers that came back."""

    def __init__(self, config: Boto3Config, max_connections: int) -> None:
        endpoint = self._endpoint = config.endpoint
        self._max = max_connections
        self._answers: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        group = crt_io.EventLoopGroup(1)
        self._bootstrap = crt_io.ClientBootstrap(group, crt_io.DefaultHostResolver(group))
        self._socket = crt_io.SocketOptions()
        self._socket.connect_timeout_ms = int(endpoint.connect_timeout_s * 1000)
        self._socket.keep_alive = True
        self._tls = _tls_context(endpoint) if endpoint.tls else None
        self._proxy = _proxy_options(endpoint)
        self._credentials = config.credentials
        self._signer = SigV4(endpoint.url, endpoint.region, endpoint.signing_name)
        self._paths: dict[str, str] = {}  # by operation: `Endpoint.path` parses the URL
        self._idle: list[http.HttpClientConnection] = []
        self._open = 0  # connections open or opening
        self._waiting: deque[tuple[bytes, Any, str]] = deque()  # (body, tag, path)
        #: Calls on the wire, oldest first: all have the same read timeout, so the first to
        #: expire is the first one here (a dict: an ordered set).
        self._exchanges: dict[_Exchange, None] = {}
        self._closed = False

    @property
    def busy(self) -> int:
        """Calls started or waiting for a connection."""
        return len(self._exchanges) + len(self._waiting)

    def send(self, body: bytes, tag: Any, operation: str = "PutEvents") -> None:
        """Start a call of `operation`; its `Answer` (carrying `tag`) comes out of `drain`."""
        path = self._paths.get(operation) or self._path_of(operation)
        if self._idle:
            self._start(self._idle.pop(), body, tag, path)
            return
        self._waiting.append((body, tag, path))
        if self._open < self._max:
            self._connect()

    def _path_of(self, operation: str) -> str:
        path = self._paths[operation] = self._endpoint.paths.get(operation, self._endpoint.path)
        return path

    def drain(self, timeout_s: float) -> list[Answer]:
        """The answers that came back, waiting up to `timeout_s` for the first one."""
        answers: list[Answer] = []
        try:
            item = (
                self._answers.get(timeout=timeout_s)
                if timeout_s > 0
                else self._answers.get_nowait()
            )
            while True:
                self._handle(item, answers)
                item = self._answers.get_nowait()
        except queue.Empty:
            pass
        self._expire()
        return answers

    def close(self) -> None:
        """Close every connection (calls still out end with an error that nobody reads)."""
        if self._closed:
            return
        self._closed = True
        for conn in self._idle + [e.conn for e in self._exchanges]:
            conn.close()
        self._idle.clear()

    # -- connections ------------------------------------------------------------------------

    def _connect(self) -> None:
        self._open += 1
        endpoint = self._endpoint
        tls = None
        if self._tls is not None:
            tls = self._tls.new_connection_options()
            tls.set_server_name(endpoint.host)
        future = http.HttpClientConnection.new(
            host_name=endpoint.host,
            port=endpoint.port,
            bootstrap=self._bootstrap,
            socket_options=self._socket,
            tls_connection_options=tls,
            proxy_options=self._proxy,
        )
        future.add_done_callback(lambda f: self._answers.put(("connected", f)))

    def _handle(self, item: tuple[str, Any], answers: list[Answer]) -> None:
        kind, value = item
        if kind == "answer":
            exchange, error_code = value
            self._exchanges.pop(exchange, None)
            answers.append(exchange.answer(error_code))
            self._release(exchange.conn)
            return
        exc = value.exception()
        if exc is None:
            self._release(value.result())
            return
        self._open -= 1
        if self._waiting:  # this call waited for the connection that failed: it failed
            _body, tag, _path = self._waiting.popleft()
            answers.append(Answer(tag, error=f"cannot connect: {_crt_error(exc)}"))
        if self._waiting and self._open < self._max:
            self._connect()

    def _release(self, conn: http.HttpClientConnection) -> None:
        if self._closed:
            conn.close()
            return
        if not conn.is_open():
            self._open -= 1
            if self._waiting and self._open < self._max:
                self._connect()
            return
        if self._waiting:
            body, tag, path = self._waiting.popleft()
            self._start(conn, body, tag, path)
        else:
            self._idle.append(conn)

    # -- one call ---------------------------------------------------------------------------

    def _start(self, conn: http.HttpClientConnection, body: bytes, tag: Any, path: str) -> None:
        request = signed_request(
            self._endpoint, self._signer, self._credentials, body, time.time(), path
        )
        deadline = time.monotonic() + self._endpoint.read_timeout_s
        exchange = _Exchange(conn, request, tag, deadline, self._answers)
        self._exchanges[exchange] = None
        exchange.activate()

    def _expire(self) -> None:
        """Close the connection of every call past its read timeout: it ends as an error."""
        if not self._exchanges:
            return
        now = time.monotonic()
        for exchange in self._exchanges:
            if exchange.deadline > now:
                return  # neither this one nor any started after it is late
            if not exchange.timed_out:
                exchange.timed_out = True
                exchange.conn.close()


def signed_request(
    endpoint: Endpoint,
    signer: SigV4,
    credentials: Any,
    body: bytes,
    now: float,
    path: str | None = None,
) -> http.HttpRequest:
    """The request for `body` to `path` (PutEvents' by default), SigV4-signed as of `now`.

    `credentials` is botocore's: its frozen copy is taken per call, so a refresh (IRSA, instance
    roles) is picked up as botocore picks it up.
    """
    frozen = credentials.get_frozen_credentials() if credentials is not None else None
    if frozen is None:
        raise RuntimeError("no AWS credentials found in the default chain")
    path = path or endpoint.path
    headers = signer.headers(body, frozen.access_key, frozen.secret_key, frozen.token, now, path)
    headers["Content-Length"] = str(len(body))
    headers["User-Agent"] = _USER_AGENT
    return http.HttpRequest("POST", path, http.HttpHeaders(list(headers.items())), io.BytesIO(body))


def _tls_context(endpoint: Endpoint) -> crt_io.ClientTlsContext:
    options = crt_io.TlsContextOptions()
    if endpoint.ca_bundle:
        options.override_default_trust_store_from_path(ca_filepath=endpoint.ca_bundle)
    return crt_io.ClientTlsContext(options)


def _proxy_options(endpoint: Endpoint) -> http.HttpProxyOptions | None:
    """HTTPS_PROXY/HTTP_PROXY as botocore reads them (NO_PROXY already applied)."""
    if not endpoint.proxy:
        return None
    proxy = urlsplit(endpoint.proxy if "://" in endpoint.proxy else f"http://{endpoint.proxy}")
    basic = proxy.username is not None
    return http.HttpProxyOptions(
        host_name=proxy.hostname or "",
        port=proxy.port or (443 if proxy.scheme == "https" else 80),
        tls_connection_options=(
            crt_io.ClientTlsContext(crt_io.TlsContextOptions()).new_connection_options()
            if proxy.scheme == "https"
            else None
        ),
        auth_type=(
            http.HttpProxyAuthenticationType.Basic
            if basic
            else http.HttpProxyAuthenticationType.Nothing
        ),
        auth_username=unquote(proxy.username) if basic and proxy.username else None,
        auth_password=unquote(proxy.password) if basic and proxy.password else None,
        connection_type=(
            http.HttpProxyConnectionType.Tunneling
            if endpoint.tls
            else http.HttpProxyConnectionType.Forwarding
        ),
    )


def _crt_error(exc: BaseException) -> str:
    return exc.name if isinstance(exc, AwsCrtError) else repr(exc)
