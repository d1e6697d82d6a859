"""An in-test Confluent Schema Registry over real HTTP, with outages on demand.

It speaks the part of the REST contract that confluent-kafka's `SchemaRegistryClient` uses to
decode and to register: `GET /schemas/ids/{id}` (query parameters such as `subject`, `format` and
`fetchMaxId` are accepted and ignored, as a registry without contexts does),
`GET /subjects/{subject}/versions/{version}` (for schema references) and
`POST /subjects/{subject}/versions`. Errors carry the registry's `error_code`s (40401 subject,
40402 version, 40403 schema not found), because that is what tells "never" from "not now".

Real HTTP rather than a mocked client, so the tests cover what the client really sends (basic
auth, paths, retries) and how it really fails (status codes, refused and dropped connections,
timeouts).
"""

from __future__ import annotations

import base64
import json
import socket
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

#: How the registry misbehaves during an outage:
#: "unavailable" answers 503 with a registry error body (a registry that lost its Kafka store),
#: "drop" closes each connection without answering (a crashing backend behind a proxy),
#: "hang" answers nothing until the outage ends (a timeout for the client),
#: "down" closes the listening socket (connection refused).
Outage = Literal["unavailable", "drop", "hang", "down"]


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    authorization: str | None


@dataclass
class _Registered:
    schema_id: int
    schema: str
    schema_type: str
    references: list[dict[str, Any]]


@dataclass
class _State:
    credentials: tuple[str, str] | None
    by_id: dict[int, _Registered] = field(default_factory=dict)
    subjects: dict[str, list[int]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    outage: Outage | None = None
    outage_over: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)


class RegistryServer:
    """A Schema Registry on 127.0.0.1; use as a context manager, or `start()` and `stop()`."""

    def __init__(self, credentials: tuple[str, str] | None = None) -> None:
        self._state = _State(credentials)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._port = 0

    # -- lifecycle ------------------------------------------------------------------------------

    def __enter__(self) -> RegistryServer:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Listen (on the same port as before, after a "down" outage) and serve in a thread."""
        handler = type("Handler", (_Handler,), {"state": self._state})
        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), handler)
        self._server.daemon_threads = True
        self._port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # so that stopping (a "down" outage) is quick
            name="registry-server",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        self._state.outage_over.set()  # release hanging requests
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    # -- content --------------------------------------------------------------------------------

    def register(
        self,
        subject: str,
        schema: dict[str, Any] | str,
        schema_type: str = "AVRO",
        references: Sequence[dict[str, Any]] = (),
    ) -> int:
        """Register `schema` under `subject` (a new version); the id, shared by equal schemas."""
        text = schema if isinstance(schema, str) else json.dumps(schema)
        with self._state.lock:
            return _register(self._state, subject, text, schema_type, list(references))

    # -- observing and breaking -----------------------------------------------------------------

    def set_credentials(self, credentials: tuple[str, str] | None) -> None:
        """Require these credentials from now on (None: none), as after a password rotation."""
        with self._state.lock:
            self._state.credentials = credentials

    @property
    def requests(self) -> list[Request]:
        with self._state.lock:
            return list(self._state.requests)

    def lookups(self, schema_id: int) -> int:
        """How many times a client asked for the schema of `schema_id`."""
        wanted = f"/schemas/ids/{schema_id}"
        return sum(1 for r in self.requests if r.method == "GET" and r.path == wanted)

    @contextmanager
    def outage(self, kind: Outage) -> Iterator[None]:
        """Misbehave as `kind` inside the block; serve normally again after it."""
        self._state.outage_over.clear()
        self._state.outage = kind
        if kind == "down":
            self.stop()
        try:
            yield
        finally:
            self._state.outage = None
            self._state.outage_over.set()
            if kind == "down":
                self.start()


def _register(
    state: _State, subject: str, text: str, schema_type: str, references: list[dict[str, Any]]
) -> int:
    for registered in state.by_id.values():
        if (registered.schema, registered.schema_type, registered.references) == (
            text,
            schema_type,
            references,
        ):
            schema_id = registered.schema_id
            break
    else:
        schema_id = max(state.by_id, default=0) + 1
        state.by_id[schema_id] = _Registered(schema_id, text, schema_type, references)
    versions = state.subjects.setdefault(subject, [])
    if schema_id not in versions:
        versions.append(schema_id)
    return schema_id


class _Handler(BaseHTTPRequestHandler):
    state: _State  # set on the subclass each server makes

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests assert on `RegistryServer.requests` instead."""

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        state = self.state
        parts = urlsplit(self.path)
        authorization = self.headers.get("Authorization")
        with state.lock:
            state.requests.append(Request(method, parts.path, parse_qs(parts.query), authorization))
        outage = state.outage
        if outage == "hang":
            state.outage_over.wait(timeout=30)  # the client has given up by then: drop it
        if outage in ("drop", "hang"):
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)  # no status line at all
            return
        if outage is not None:
            self._json(503, {"error_code": 50003, "message": "Error while forwarding the request"})
            return
        if state.credentials is not None and authorization != _basic(*state.credentials):
            self._json(401, {"error_code": 401, "message": "Unauthorized"})
            return
        segments = [unquote(s) for s in parts.path.strip("/").split("/")]
        with state.lock:
            status, body = self._route(method, segments)
        self._json(status, body)

    def _route(self, method: str, segments: list[str]) -> tuple[int, dict[str, Any]]:
        state = self.state
        match method, segments:
            case "GET", ["schemas", "ids", raw_id] if raw_id.isdigit():
                registered = state.by_id.get(int(raw_id))
                if registered is None:
                    return 404, {"error_code": 40403, "message": "Schema not found"}
                return 200, _schema_body(registered)
            case "GET", ["subjects", subject, "versions", version]:
                ids = state.subjects.get(subject)
                if ids is None:
                    return 404, {"error_code": 40401, "message": f"Subject '{subject}' not found."}
                index = (
                    len(ids) if version == "latest" else int(version) if version.isdigit() else 0
                )
                if not 1 <= index <= len(ids):
                    return 404, {"error_code": 40402, "message": "Version not found."}
                registered = state.by_id[ids[index - 1]]
                return 200, _schema_body(registered) | {
                    "subject": subject,
                    "version": index,
                    "id": registered.schema_id,
                }
            case "POST", ["subjects", subject, "versions"]:
                length = int(self.headers.get("Content-Length") or 0)
                request = json.loads(self.rfile.read(length) or b"{}")
                schema_id = _register(
                    state,
                    subject,
                    request["schema"],
                    request.get("schemaType", "AVRO"),
                    request.get("references", []),
                )
                return 200, {"id": schema_id}
        return 404, {"error_code": 404, "message": "HTTP 404 Not Found"}

    def _json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _schema_body(registered: _Registered) -> dict[str, Any]:
    """As the registry answers: `schemaType` only when not Avro, `references` only when any."""
    body: dict[str, Any] = {"schema": registered.schema}
    if registered.schema_type != "AVRO":
        body["schemaType"] = registered.schema_type
    if registered.references:
        body["references"] = registered.references
    return body


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def basic_auth_header(user: str, password: str) -> str:
    """The `Authorization` header a client with these credentials sends."""
    return _basic(user, password)
