"""PutEvents on the wire without boto3's per-call machinery: the same request, for less CPU.

A boto3 `put_events` costs 1 to 1.5 ms of CPU, most of it in what this consumer doesn't need on
every call: event hooks, parameter validation (our validator already checked the events against
the same model), a serializer that walks the model's shapes, generic request preparation, and a
SigV4 signer written for any request (query strings, arbitrary headers, kept in an
`email.message` header map). At 10 events per call that alone is more than the whole CPU budget
of 10,000 events per core-second.

`LeanPutEvents` borrows what matters from botocore: the boto3 client's own HTTP session (so
proxies, CA bundle, client certificate, timeouts and pool size are what the boto3 configuration
says), the session's credential chain (refreshed as boto3 refreshes it), and botocore's rest-json
parser and the client's modeled exception classes for errors, so a failure raises exactly the
`ClientError` boto3 would. It writes two things itself, both checked against botocore in the
tests: the body (one JSON encoding, timestamps as botocore's serializer writes them) and the
SigV4 signature of this one request shape (POST, no query string, three fixed headers and the
session token if there is one), with the derived signing key kept for the day.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import json
import threading
import time
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit

import boto3
import botocore
from botocore.awsrequest import AWSPreparedRequest
from botocore.config import Config
from botocore.exceptions import NoCredentialsError
from botocore.parsers import create_parser

from consumer import __version__

OPERATION = "PutEvents"


def _unix_timestamp(value: object) -> float | int:
    """`sentAt` as botocore's rest-json serializer writes a datetime: epoch seconds, to the µs."""
    if not isinstance(value, datetime):
        raise TypeError(f"{type(value).__name__} is not JSON-encodable")
    seconds = calendar.timegm(value.utctimetuple())  # a naive datetime is taken as UTC
    if value.microsecond:
        return (seconds * 10**6 + value.microsecond) / 10**6  # one rounding, as botocore does
    return seconds


#: Built once; `json.dumps` with options builds an encoder per call.
_encode = json.JSONEncoder(separators=(",", ":"), allow_nan=False, default=_unix_timestamp).encode


def encode_request(request: dict[str, Any]) -> bytes:
    """The JSON body of a PutEvents request given in boto3's parameter form."""
    return _encode(request).encode()


class SigV4:
    """AWS Signature Version 4 for a POST with a JSON body and no query string.

    The canonical request of that shape is fixed but for the date, the body hash and the optional
    session token, so signing is two SHA-256 hashes and one HMAC. The derived key changes with
    the date, the secret (rotated credentials) or nothing else, so it is kept.
    """

    def __init__(self, url: str, region: str, service: str) -> None:
        parts = urlsplit(url)
        self.host = _host(parts.scheme, parts.hostname or "", parts.port)
        self._path = quote(parts.path or "/", safe="/~")
        self._region, self._service = region, service
        self._key_for: tuple[str, str] | None = None  # (secret, date) of `_key`
        self._key = b""
        self._lock = threading.Lock()

    def headers(
        self, body: bytes, access_key: str, secret_key: str, token: str | None, now: float
    ) -> dict[str, str]:
        """The headers that sign `body`: Host, Content-Type, X-Amz-Date, Authorization (+ token)."""
        amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
        date = amz_date[:8]
        headers = {"Content-Type": "application/json", "Host": self.host, "X-Amz-Date": amz_date}
        canonical = f"content-type:application/json\nhost:{self.host}\nx-amz-date:{amz_date}\n"
        signed = "content-type;host;x-amz-date"
        if token:
            headers["X-Amz-Security-Token"] = token
            canonical += f"x-amz-security-token:{token}\n"
            signed += ";x-amz-security-token"
        request = f"POST\n{self._path}\n\n{canonical}\n{signed}\n{hashlib.sha256(body).hexdigest()}"
        scope = f"{date}/{self._region}/{self._service}/aws4_request"
        digest = hashlib.sha256(request.encode()).hexdigest()
        to_sign = f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{digest}"
        signature = hmac.new(self._signing_key(secret_key, date), to_sign.encode(), "sha256")
        headers["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
            f"SignedHeaders={signed}, Signature={signature.hexdigest()}"
        )
        return headers

    def _signing_key(self, secret_key: str, date: str) -> bytes:
        with self._lock:
            if self._key_for != (secret_key, date):
                key = ("AWS4" + secret_key).encode()
                for part in (date, self._region, self._service, "aws4_request"):
                    key = hmac.new(key, part.encode(), "sha256").digest()
                self._key_for, self._key = (secret_key, date), key
            return self._key


def _host(scheme: str, hostname: str, port: int | None) -> str:
    """The Host header as botocore signs it: lower case, IPv6 bracketed, default port left out."""
    host = f"[{hostname}]" if ":" in hostname else hostname
    if port is not None and port != {"http": 80, "https": 443}.get(scheme):
        host = f"{host}:{port}"
    return host


class LeanPutEvents:
    """A `put_events(**request)` that behaves like the boto3 client's, built from that client.

    Thread-safe as the boto3 client is: the HTTP session pools connections across threads, and
    every call signs a request of its own.
    """

    def __init__(self, client: Any, credentials: Any) -> None:
        meta = client.meta
        model = meta.service_model
        operation = model.operation_model(OPERATION)
        if operation.http["method"] != "POST" or "?" in operation.http["requestUri"]:
            raise RuntimeError("the PutEvents model changed shape: the lean client can't sign it")
        self._url: str = meta.endpoint_url.rstrip("/") + operation.http["requestUri"]
        self._output_shape = operation.output_shape
        self._signer = SigV4(self._url, meta.region_name, model.signing_name)
        self._credentials = credentials
        self._exceptions = client.exceptions
        self._parser = create_parser(model.protocol)
        # Not public API, but the one place the client's network settings are all applied.
        # tests/send/test_client.py fails first if a botocore release moves it.
        http = getattr(getattr(client, "_endpoint", None), "http_session", None)
        if not callable(getattr(http, "send", None)):
            raise RuntimeError(
                f"botocore {botocore.__version__} no longer has client._endpoint.http_session: "
                "install a boto3/botocore release this version of personalize-consumer supports"
            )
        self._http: Any = http
        self._user_agent = f"personalize-consumer/{__version__} botocore/{botocore.__version__}"

    def put_events(self, **request: Any) -> dict[str, Any]:
        credentials = self._credentials.get_frozen_credentials() if self._credentials else None
        if credentials is None:
            raise NoCredentialsError()
        body = encode_request(request)
        headers = self._signer.headers(
            body, credentials.access_key, credentials.secret_key, credentials.token, time.time()
        )
        headers["User-Agent"] = self._user_agent
        response = self._http.send(AWSPreparedRequest("POST", self._url, headers, body, False))
        if response.status_code < 300:
            return {"ResponseMetadata": {"HTTPStatusCode": response.status_code}}
        raw = {
            "status_code": response.status_code,
            "headers": response.headers,
            "body": response.content,
        }
        parsed: dict[str, Any] = self._parser.parse(raw, self._output_shape)
        code = parsed.get("Error", {}).get("Code", "")
        raise self._exceptions.from_code(code)(parsed, OPERATION)


def make_client(region: str, max_connections: int = 10) -> LeanPutEvents:
    """A PutEvents client whose retries we own (tenacity), so every retry is visible.

    Configured as a boto3 client (the endpoint from AWS_ENDPOINT_URL_PERSONALIZE_EVENTS when set,
    proxies, CA bundle, the default credential chain), then sent through `LeanPutEvents`: boto3's
    per-call machinery costs more CPU than everything else the consumer does for a call.
    """
    config = Config(
        region_name=region,
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=5,
        read_timeout=15,
        max_pool_connections=max_connections,
        parameter_validation=False,
    )
    session = boto3.session.Session()
    client = session.client("personalize-events", config=config)
    return LeanPutEvents(client, session.get_credentials())
