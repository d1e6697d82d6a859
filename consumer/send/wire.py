"""What a PutEvents call needs from boto3's configuration, resolved once as boto3 resolves it,
and the two things written per call: the JSON body, and boto3's own errors from an answer.

Everything a boto3 user relies on keeps working because boto3 itself is asked: the endpoint
(AWS_ENDPOINT_URL_PERSONALIZE_EVENTS, the region's, FIPS and dual-stack settings), the region, the
credential chain (environment, profile, IRSA web identity, container and instance roles, refreshed
as botocore refreshes them), the CA bundle (AWS_CA_BUNDLE or the profile's `ca_bundle`), and the
proxy for the endpoint (HTTPS_PROXY, NO_PROXY, as botocore reads them). Only the sending is not
botocore's: `crt.py` does that for a fraction of the CPU.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import boto3
import botocore.session
import orjson
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.parsers import create_parser
from botocore.utils import get_environ_proxies

from consumer.records import OPERATIONS

OPERATION = "PutEvents"
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class Endpoint:
    """Where calls go and how: resolved from boto3's configuration once, at start-up."""

    url: str  # the operation's full URL, e.g. https://personalize-events.eu-west-1.amazonaws.com/events
    region: str
    signing_name: str
    ca_bundle: str | None
    proxy: str | None  # the proxy URL for this endpoint, or None (none set, or NO_PROXY matched)
    connect_timeout_s: float = CONNECT_TIMEOUT_S
    read_timeout_s: float = READ_TIMEOUT_S
    #: Each operation's path (PutItems: .../items); `url` is PutEvents'.
    paths: Mapping[str, str] = field(default_factory=dict)

    @property
    def tls(self) -> bool:
        return urlsplit(self.url).scheme == "https"

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (443 if parts.scheme == "https" else 80)

    @property
    def path(self) -> str:
        return urlsplit(self.url).path or "/"


class Boto3Config:
    """The boto3 `personalize-events` client's configuration, without its sending machinery.

    The client is built (it makes no network call) so that the endpoint, the model, the error
    parser and the modeled exception classes are exactly boto3's.
    """

    def __init__(self, region: str) -> None:
        session = botocore.session.Session()
        config = Config(region_name=region, retries={"total_max_attempts": 1, "mode": "standard"})
        client = boto3.session.Session(botocore_session=session).client(
            "personalize-events", config=config
        )
        meta = client.meta
        operation = meta.service_model.operation_model(OPERATION)
        if operation.http["method"] != "POST" or "?" in operation.http["requestUri"]:
            raise RuntimeError("the PutEvents model changed shape: this client can't send it")
        url = meta.endpoint_url.rstrip("/") + operation.http["requestUri"]
        paths = {}
        for name in OPERATIONS:
            http = meta.service_model.operation_model(name).http
            if http["method"] != "POST" or "?" in http["requestUri"]:
                raise RuntimeError(f"the {name} model changed shape: this client can't send it")
            paths[name] = urlsplit(meta.endpoint_url.rstrip("/") + http["requestUri"]).path
        proxies = get_environ_proxies(url)
        self.endpoint = Endpoint(
            url=url,
            region=meta.region_name,
            signing_name=meta.service_model.signing_name,
            ca_bundle=session.get_config_variable("ca_bundle"),
            proxy=proxies.get(urlsplit(url).scheme),
            paths=paths,
        )
        self.credentials = session.get_credentials()
        self._output_shape = operation.output_shape
        self._parser = create_parser(meta.service_model.protocol)
        self._exceptions = client.exceptions

    def error(self, status: int, headers: dict[str, str], body: bytes) -> ClientError:
        """The `ClientError` boto3 raises for this answer (modeled subclasses included)."""
        raw = {"status_code": status, "headers": headers, "body": body}
        parsed: dict[str, Any] = self._parser.parse(raw, self._output_shape)
        code = parsed.get("Error", {}).get("Code", "")
        error: ClientError = self._exceptions.from_code(code)(parsed, OPERATION)
        return error


def _unix_timestamp(value: object) -> float | int:
    """`sentAt` as botocore's rest-json serializer writes a datetime: epoch seconds, to the µs."""
    if not isinstance(value, datetime):
        raise TypeError(f"{type(value).__name__} is not JSON-encodable")
    seconds = calendar.timegm(value.utctimetuple())  # a naive datetime is taken as UTC
    if value.microsecond:
        return (seconds * 10**6 + value.microsecond) / 10**6  # one rounding, as botocore does
    return seconds


def encode_request(request: dict[str, Any]) -> bytes:
    """The JSON body of a request given in boto3's parameter form.

    orjson rather than `json`: measured on this machine (8 dense events, 20,000 bodies), `json`
    with its per-value `default` check took 21.5 µs per body, orjson 2.2. Its numbers and
    strings parse back to what botocore's serializer writes (tests/send/test_wire.py); a datetime
    still goes through `_unix_timestamp`, as botocore writes it.
    """
    return orjson.dumps(request, default=_unix_timestamp, option=orjson.OPT_PASSTHROUGH_DATETIME)
