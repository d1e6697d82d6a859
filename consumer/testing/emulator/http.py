"""A minimal HTTP/1.1 server protocol: just what botocore's urllib3 client speaks.

Keep-alive, pipelining, `Content-Length` bodies and `Expect: 100-continue`. No chunked request
bodies: botocore sends every operation's body with a length. An `asyncio.Protocol` rather than
streams, and delayed answers scheduled with `call_later`, because the emulator must outrun the
clients that benchmark against it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus

MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 8 * 1024 * 1024

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]  # Names lower-cased; a repeated header keeps its last value.
    body: bytes


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes = b"{}"
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str = "application/json"

    def encode(self, keep_alive: bool) -> bytes:
        reason = _REASONS.get(self.status, "Unknown")
        lines = [
            f"HTTP/1.1 {self.status} {reason}",
            f"Content-Type: {self.content_type}",
            f"Content-Length: {len(self.body)}",
        ]
        lines.extend(f"{name}: {value}" for name, value in self.headers)
        if not keep_alive:
            lines.append("Connection: close")
        lines.append("\r\n")
        return "\r\n".join(lines).encode("latin-1") + self.body


_REASONS = {status.value: status.phrase for status in HTTPStatus}


@dataclass(frozen=True, slots=True)
class Reply:
    """What the handler decided: a response (or `None`: drop the connection) and when."""

    response: Response | None
    delay_s: float = 0.0


Handler = Callable[[Request], Reply]

_INTERNAL_FAILURE = Reply(
    Response(500, b'{"message":"emulator failure"}', (("x-amzn-ErrorType", "InternalFailure"),))
)


@dataclass(slots=True)
class _Head:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    length: int
    keep_alive: bool


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(slots=True)
class Connections:
    """Open connections, so shutdown can close idle keep-alive ones (3.11 servers do not)."""

    open: set[HttpProtocol] = field(default_factory=set)

    async def close_all(self, timeout: float = 1.0) -> None:
        """Close every connection; abort those still flushing output after `timeout`."""
        for protocol in list(self.open):
            protocol.close()
        deadline = asyncio.get_running_loop().time() + timeout
        while self.open and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.005)
        for protocol in list(self.open):
            protocol.abort()


class HttpProtocol(asyncio.Protocol):
    """One client connection; answers its requests strictly in order."""

    def __init__(self, handler: Handler, connections: Connections) -> None:
        self._handler = handler
        self._connections = connections
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._head: _Head | None = None
        self._delayed: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._connections.open.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._connections.open.discard(self)
        if self._delayed is not None:
            self._delayed.cancel()
            self._delayed = None

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._delayed is None:
            self._serve()

    def _open(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    def _serve(self) -> None:
        """Answer every complete request buffered, pausing at a delayed answer."""
        while self._open():
            try:
                parsed = self._next_request()
            except _BadRequest as error:
                body = json.dumps({"message": str(error)}).encode()
                self._answer(Reply(Response(error.status, body)), keep_alive=False)
                return
            if parsed is None:
                return
            request, keep_alive = parsed
            try:
                reply = self._handler(request)
            except Exception:  # A bug must not look like an outage to the client.
                log.exception("emulator handler failed")
                reply = _INTERNAL_FAILURE
            if reply.delay_s > 0:
                loop = asyncio.get_running_loop()
                self._delayed = loop.call_later(reply.delay_s, self._resume, reply, keep_alive)
                return
            self._answer(reply, keep_alive)

    def _resume(self, reply: Reply, keep_alive: bool) -> None:
        self._delayed = None
        self._answer(reply, keep_alive)
        self._serve()

    def _answer(self, reply: Reply, keep_alive: bool) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        if reply.response is None:
            transport.close()  # The client sees the connection closed without an answer.
            return
        transport.write(reply.response.encode(keep_alive))
        if not keep_alive:
            transport.close()

    def _next_request(self) -> tuple[Request, bool] | None:
        buffer = self._buffer
        head = self._head
        if head is None:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > MAX_HEAD_BYTES:
                    raise _BadRequest(431, "request head too large")
                return None
            head = _parse_head(bytes(buffer[:end]))
            del buffer[: end + 4]
            self._head = head
            transport = self._transport
            expects = head.headers.get("expect", "").lower() == "100-continue"
            if expects and len(buffer) < head.length and transport and not transport.is_closing():
                transport.write(_CONTINUE)
        if len(buffer) < head.length:
            return None
        body = bytes(buffer[: head.length])
        del buffer[: head.length]
        self._head = None
        request = Request(head.method, head.path, head.query, head.headers, body)
        return request, head.keep_alive


def _parse_head(raw: bytes) -> _Head:
    lines = raw.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise _BadRequest(400, "malformed request line")
    method, target, version = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise _BadRequest(400, "malformed header line")
        headers[name.lower()] = value.strip()
    if "transfer-encoding" in headers:
        raise _BadRequest(501, "chunked request bodies are not supported")
    try:
        length = int(headers.get("content-length", "0"))
    except ValueError:
        raise _BadRequest(400, "invalid Content-Length") from None
    if not 0 <= length <= MAX_BODY_BYTES:
        raise _BadRequest(413, "request body too large")
    connection = headers.get("connection", "").lower()
    # HTTP/1.1 keeps the connection unless told otherwise; HTTP/1.0 only when asked to.
    keep_alive = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
    path, _, query = target.partition("?")
    return _Head(method, path, query, headers, length, keep_alive)
