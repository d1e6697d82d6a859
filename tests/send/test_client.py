"""The lean PutEvents client sends what boto3 sends, signed so AWS accepts it, and fails alike."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

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

from consumer.send.client import LeanPutEvents, SigV4, encode_request
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
def capture(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Capture)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Capture.seen = []
    url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("AWS_ENDPOINT_URL_PERSONALIZE_EVENTS", url)
    yield url
    server.shutdown()
    server.server_close()


def clients(secret: str = "secret") -> tuple[Any, LeanPutEvents]:
    session = boto3.session.Session(
        aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key=secret, region_name=REGION
    )
    config = Config(retries={"total_max_attempts": 1}, parameter_validation=False)
    client = session.client("personalize-events", config=config)
    return client, LeanPutEvents(client, session.get_credentials())


def request(**event: Any) -> dict[str, Any]:
    base = {"eventType": "click", "sentAt": datetime(2026, 11, 27, 12, 0, 1, 250_000, tzinfo=UTC)}
    return {
        "trackingId": "tracker",
        "userId": "u-1",
        "sessionId": "s-1",
        "eventList": [base | event],
    }


def test_the_request_on_the_wire_is_boto3s_and_its_signature_verifies(capture: str) -> None:
    boto3_client, lean = clients()
    params = request(itemId="i-é", metricAttribution={"eventAttributionSource": "email"})
    boto3_client.put_events(**params)
    lean.put_events(**params)
    (b_method, b_path, b_headers, b_body), (method, path, headers, body) = _Capture.seen

    assert (method, path) == (b_method, b_path) == ("POST", "/events")
    assert json.loads(body) == json.loads(b_body)
    assert headers["Content-Type"] == b_headers["Content-Type"]
    # Same credential scope: access key, date, region and the model's signing name.
    scope = _auth_params(headers)["Credential"].split("/")[1:]
    assert scope == _auth_params(b_headers)["Credential"].split("/")[1:]
    assert scope[1:] == [REGION, "personalize", "aws4_request"]
    # Re-sign what arrived: the signature covers the body and headers actually sent.
    assert (
        _signature_of(capture, path, headers, body, "secret") == _auth_params(headers)["Signature"]
    )
    assert (
        _signature_of(capture, path, headers, body, "other") != _auth_params(headers)["Signature"]
    )


def test_errors_raise_the_same_modeled_exceptions_as_boto3(monkeypatch: pytest.MonkeyPatch) -> None:
    server = EmulatorServer(EmulatorConfig(seed=1))
    server.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_PERSONALIZE_EVENTS", server.url)
    try:
        boto3_client, lean = clients()
        bad = request(properties='{"userId": "reserved"}')
        raised = []
        for client in (boto3_client, lean):
            with pytest.raises(ClientError) as info:
                client.put_events(**bad)
            raised.append(info.value)
        assert type(raised[0]) is type(raised[1])
        assert type(raised[1]).__name__ == "InvalidInputException"
        assert raised[0].response["Error"] == raised[1].response["Error"]
        assert raised[1].response["ResponseMetadata"]["HTTPStatusCode"] == 400

        server.set_faults(access_denied=True)
        with pytest.raises(ClientError) as denied:
            lean.put_events(**request())
        assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
        server.set_faults(access_denied=False)
        assert lean.put_events(**request())["ResponseMetadata"]["HTTPStatusCode"] == 200
        assert server.stats()["accepted_events"] == 1
    finally:
        server.stop()


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


def _auth_params(headers: dict[str, str]) -> dict[str, str]:
    authorization = headers["Authorization"].removeprefix("AWS4-HMAC-SHA256 ")
    return dict(part.strip().split("=", 1) for part in authorization.split(","))


def _signature_of(url: str, path: str, headers: dict[str, str], body: bytes, secret: str) -> str:
    signed = _auth_params(headers)["SignedHeaders"].split(";")
    kept = {name: value for name, value in headers.items() if name.lower() in signed}
    aws = AWSRequest("POST", url + path, kept, body)
    aws.context["timestamp"] = headers["X-Amz-Date"]
    auth = SigV4Auth(Credentials("AKIDEXAMPLE", secret), "personalize", REGION)
    return auth.signature(auth.string_to_sign(aws, auth.canonical_request(aws)), aws)


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
    now=st.floats(min_value=1.6e9, max_value=2.0e9),
)
def test_the_signature_is_botocores(url: str, body: bytes, token: str | None, now: float) -> None:
    headers = SigV4(url, REGION, "personalize").headers(body, "AKIDEXAMPLE", "secret", token, now)
    # botocore derives the host from the URL itself: the signatures agree only if ours matches.
    kept = {k: v for k, v in headers.items() if k not in ("Authorization", "Host")}
    aws = AWSRequest("POST", url, kept, body)
    aws.context["timestamp"] = headers["X-Amz-Date"]
    auth = SigV4Auth(Credentials("AKIDEXAMPLE", "secret", token), "personalize", REGION)
    canonical = auth.canonical_request(aws)
    expected = auth.signature(auth.string_to_sign(aws, canonical), aws)
    assert _auth_params(headers)["Signature"] == expected
    assert _auth_params(headers)["SignedHeaders"] == auth.signed_headers(auth.headers_to_sign(aws))


def test_the_private_botocore_attribute_the_client_reads_is_still_there() -> None:
    """`LeanPutEvents` sends through the boto3 client's own HTTP session, which botocore keeps at
    `client._endpoint.http_session` (not public API). If a release moves it, this fails first."""
    client = boto3.session.Session().client(
        "personalize-events", region_name=REGION, aws_access_key_id="a", aws_secret_access_key="b"
    )
    http = client._endpoint.http_session
    assert callable(http.send)
    assert type(http).__module__ == "botocore.httpsession"
