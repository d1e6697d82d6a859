"""The CRT client sends what boto3 would send, signed so AWS accepts it, configured as boto3 is
configured, and failing with boto3's own exceptions. Checked against botocore itself."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import urlsplit

import boto3
import botocore.session
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from botocore.serialize import create_serializer
from hypothesis import given, settings
from hypothesis import strategies as st

from consumer.send.crt import Answer, CrtClient, signed_request
from consumer.send.sigv4 import SigV4
from consumer.send.wire import Boto3Config, Endpoint, encode_request
from consumer.testing.emulator import EmulatorConfig, EmulatorServer

REGION = "eu-west-1"


class _Capture(BaseHTTPRequestHandler):
    """Answers 200 `{}` to anything and keeps what arrived, as bytes on the wire."""

    seen: ClassVar[list[tuple[str, str, dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        _Capture.seen.append((self.command, self.path, dict(self.headers.items()), body))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials and region from the environment only, as in a pod."""
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")


@pytest.fixture
def capture(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Capture)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Capture.seen = []
    url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("AWS_ENDPOINT_URL_PERSONALIZE_EVENTS", url)
    yield url
    server.shutdown()
    server.server_close()


def request(**event: Any) -> dict[str, Any]:
    base = {"eventType": "click", "sentAt": datetime(2026, 11, 27, 12, 0, 1, 250_000, tzinfo=UTC)}
    return {
        "trackingId": "tracker",
        "userId": "u-1",
        "sessionId": "s-1",
        "eventList": [base | event],
    }


def send(client: CrtClient, params: dict[str, Any]) -> Answer:
    client.send(encode_request(params), "tag")
    for _ in range(100):
        answers = client.drain(0.1)
        if answers:
            (answer,) = answers
            return answer
    raise AssertionError("no answer within 10 s")


def boto3_client() -> Any:
    config = Config(region_name=REGION, retries={"total_max_attempts": 1})
    return boto3.session.Session().client("personalize-events", config=config)


def test_the_request_on_the_wire_is_boto3s_and_its_signature_verifies(capture: str) -> None:
    params = request(itemId="i-é", metricAttribution={"eventAttributionSource": "email"})
    boto3_client().put_events(**params)
    client = CrtClient(Boto3Config(REGION), max_connections=2)
    assert send(client, params).status == 200
    client.close()
    (b_method, b_path, b_headers, b_body), (method, path, headers, body) = _Capture.seen

    assert (method, path) == (b_method, b_path) == ("POST", "/events")
    assert json.loads(body) == json.loads(b_body)
    assert headers["Content-Type"] == b_headers["Content-Type"]
    # Same credential scope: access key, date, region and the model's signing name.
    scope = _auth_params(headers)["Credential"].split("/")[1:]
    assert scope == _auth_params(b_headers)["Credential"].split("/")[1:]
    assert scope[1:] == [REGION, "personalize", "aws4_request"]
    # Re-sign what arrived: the signature covers the body and headers actually sent.
    assert _signature_of(capture, path, headers, body, "secret") == _signature(headers)
    assert _signature_of(capture, path, headers, body, "other") != _signature(headers)


def test_errors_are_the_same_modeled_exceptions_as_boto3s(
    aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = EmulatorServer(EmulatorConfig(seed=1))
    server.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_PERSONALIZE_EVENTS", server.url)
    config = Boto3Config(REGION)
    client = CrtClient(config, max_connections=1)
    try:
        bad = request(properties='{"userId": "reserved"}')
        with pytest.raises(ClientError) as expected:
            boto3_client().put_events(**bad)
        answer = send(client, bad)
        ours = config.error(answer.status, answer.headers, answer.body)
        # Each client makes its own modeled classes: the same name, from the same model.
        assert type(ours).__name__ == type(expected.value).__name__ == "InvalidInputException"
        assert ours.response["Error"] == expected.value.response["Error"]
        assert ours.response["ResponseMetadata"]["HTTPStatusCode"] == 400

        server.set_faults(access_denied=True)
        denied = send(client, request())
        code = config.error(denied.status, denied.headers, denied.body).response["Error"]["Code"]
        assert code == "AccessDeniedException"
        server.set_faults(access_denied=False)
        assert send(client, request()).status == 200
        assert server.stats()["accepted_events"] == 1
    finally:
        client.close()
        server.stop()


def test_an_endpoint_that_is_not_there_is_an_answer_with_an_error_not_an_exception(
    aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = EmulatorServer(EmulatorConfig())
    server.start()
    url = server.url
    server.stop()  # nothing listens there now
    monkeypatch.setenv("AWS_ENDPOINT_URL_PERSONALIZE_EVENTS", url)
    client = CrtClient(Boto3Config(REGION), max_connections=1)
    answer = send(client, request())
    client.close()
    assert answer.status == 0 and answer.error.startswith("cannot connect")


def test_the_configuration_is_boto3s(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL_PERSONALIZE_EVENTS", raising=False)
    monkeypatch.delenv("AWS_CA_BUNDLE", raising=False)
    endpoint = Boto3Config(REGION).endpoint
    assert endpoint.url == f"https://personalize-events.{REGION}.amazonaws.com/events"
    assert (endpoint.tls, endpoint.port, endpoint.path) == (True, 443, "/events")
    assert (endpoint.region, endpoint.signing_name, endpoint.proxy) == (REGION, "personalize", None)

    monkeypatch.setenv("AWS_CA_BUNDLE", "/etc/corp/ca.pem")
    monkeypatch.setenv("HTTPS_PROXY", "http://user:pw@proxy.corp:3128")
    endpoint = Boto3Config(REGION).endpoint
    assert endpoint.ca_bundle == "/etc/corp/ca.pem"
    assert endpoint.proxy == "http://user:pw@proxy.corp:3128"

    monkeypatch.setenv("NO_PROXY", ".amazonaws.com")  # bypassed, as botocore bypasses it
    assert Boto3Config(REGION).endpoint.proxy is None


def test_a_plain_http_endpoint_is_reached_through_http_proxy(
    capture: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _ForwardingProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        client = CrtClient(Boto3Config(REGION), max_connections=1)
        assert send(client, request()).status == 200
        client.close()
        assert proxy.forwarded == [capture + "/events"]
    assert len(_Capture.seen) == 1


_text = st.text(min_size=1, max_size=20)
_sent_at = st.one_of(
    st.datetimes(
        min_value=datetime(2000, 1, 1),
        max_value=datetime(2030, 1, 1),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=-7)), None]),
    ),
    # Numbers pass through; botocore rounds them to the µs via a datetime: compare at the ms.
    st.integers(min_value=0, max_value=2_000_000_000_000).map(lambda millis: millis / 1000),
    st.integers(min_value=0, max_value=2_000_000_000),
)
_events = st.fixed_dictionaries(
    {"eventType": _text, "sentAt": _sent_at},
    optional={
        "eventId": _text,
        "eventValue": st.floats(allow_nan=False, allow_infinity=False, width=32),
        "itemId": _text,
        "properties": st.dictionaries(_text, _text, max_size=3).map(json.dumps),
        "recommendationId": _text,
        "impression": st.lists(_text, min_size=1, max_size=3),
        "metricAttribution": st.fixed_dictionaries({"eventAttributionSource": _text}),
    },
)


@settings(max_examples=200, deadline=None)
@given(
    events=st.lists(_events, min_size=1, max_size=10),
    user_id=st.one_of(st.none(), _text),
)
def test_the_body_is_what_botocores_serializer_writes(
    events: list[dict[str, Any]], user_id: str | None
) -> None:
    params: dict[str, Any] = {"trackingId": "t", "sessionId": "s", "eventList": events}
    if user_id is not None:
        params["userId"] = user_id
    expected = _SERIALIZER.serialize_to_request(params, _OPERATION)["body"]
    assert json.loads(encode_request(params)) == json.loads(expected)


_MODEL = botocore.session.get_session().get_service_model("personalize-events")
_OPERATION = _MODEL.operation_model("PutEvents")
_SERIALIZER = create_serializer(_MODEL.protocol, include_validation=False)


@settings(max_examples=50, deadline=None)
@given(
    url=st.sampled_from(
        [
            "https://personalize-events.eu-west-1.amazonaws.com/events",
            "https://personalize-events.eu-west-1.amazonaws.com:443/events",
            "http://127.0.0.1:8765/events",
            "http://[::1]:8765/prefix/events",
        ]
    ),
    body=st.binary(max_size=200),
    token=st.one_of(st.none(), st.text(alphabet="abcXYZ0123456789+/=", min_size=1)),
    now=st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1)),
)
def test_the_signature_is_botocores(
    url: str, body: bytes, token: str | None, now: datetime
) -> None:
    endpoint = Endpoint(
        url=url, region=REGION, signing_name="personalize", ca_bundle=None, proxy=None
    )
    signer = SigV4(url, REGION, "personalize")
    credentials = Credentials("AKIDEXAMPLE", "secret", token)
    signed = signed_request(
        endpoint, signer, credentials, body, now.replace(tzinfo=UTC).timestamp()
    )
    headers = dict(signed.headers)
    # botocore derives the host from the URL itself: the signatures agree only if ours matches.
    assert headers["Host"] == urlsplit(url).netloc.removesuffix(":443")
    # Content-Length and User-Agent go unsigned (AWS needs host and x-amz-date signed, no more).
    unsigned = ("Authorization", "Host", "User-Agent", "Content-Length")
    kept = {k: v for k, v in headers.items() if k not in unsigned}
    aws = AWSRequest("POST", url, kept, body)
    aws.context["timestamp"] = headers["X-Amz-Date"]
    botocore_auth = SigV4Auth(Credentials("AKIDEXAMPLE", "secret", token), "personalize", REGION)
    canonical = botocore_auth.canonical_request(aws)
    assert _signature(headers) == botocore_auth.signature(
        botocore_auth.string_to_sign(aws, canonical), aws
    )
    assert _auth_params(headers)["SignedHeaders"] == botocore_auth.signed_headers(
        botocore_auth.headers_to_sign(aws)
    )


def _auth_params(headers: dict[str, str]) -> dict[str, str]:
    authorization = headers["Authorization"].removeprefix("AWS4-HMAC-SHA256 ")
    return dict(part.strip().split("=", 1) for part in authorization.split(","))


def _signature(headers: dict[str, str]) -> str:
    return _auth_params(headers)["Signature"]


def _signature_of(url: str, path: str, headers: dict[str, str], body: bytes, secret: str) -> str:
    signed = _auth_params(headers)["SignedHeaders"].split(";")
    kept = {name: value for name, value in headers.items() if name.lower() in signed}
    aws = AWSRequest("POST", url + path, kept, body)
    aws.context["timestamp"] = headers["X-Amz-Date"]
    botocore_auth = SigV4Auth(Credentials("AKIDEXAMPLE", secret), "personalize", REGION)
    return botocore_auth.signature(
        botocore_auth.string_to_sign(aws, botocore_auth.canonical_request(aws)), aws
    )


class _ForwardingProxy:
    """An HTTP proxy that forwards absolute-form requests (what a client sends through
    HTTP_PROXY to a plain-HTTP endpoint) and keeps the URLs it forwarded."""

    def __init__(self) -> None:
        self.forwarded: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                import http.client

                outer.forwarded.append(self.path)
                target = urlsplit(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                upstream = http.client.HTTPConnection(
                    target.hostname or "", target.port, timeout=10
                )
                upstream.request("POST", target.path, body, dict(self.headers.items()))
                reply = upstream.getresponse()
                data = reply.read()
                self.send_response(reply.status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> _ForwardingProxy:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
