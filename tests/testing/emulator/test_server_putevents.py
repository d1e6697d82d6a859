"""The emulator's PutEvents over real HTTP with a real boto3 client: valid calls accepted and
recorded, invalid input naming the field, signatures checked and unknown operations refused."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest
from botocore import UNSIGNED

from consumer.testing.emulator import EmulatorConfig, EmulatorServer
from tests.testing.emulator.server_support import (
    SIGNED_HEADERS,
    error_code,
    event,
    make_client,
    put,
    raw_request,
    wait_until,
)

# --- PutEvents ------------------------------------------------------------------------------


def test_valid_call_is_accepted_and_recorded(
    server: EmulatorServer, client: Any, events_path: Path
) -> None:
    properties = json.dumps({"color": "red"})
    response = put(client, event(properties=properties), event(eventType="buy", eventValue=9.5))

    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert response["ResponseMetadata"]["RequestId"]
    # No explicit flush: the periodic flush must get the lines there on its own.
    wait_until(lambda: events_path.exists() and len(events_path.read_text().splitlines()) == 2)
    first, second = (json.loads(line) for line in events_path.read_text().splitlines())
    assert first["trackingId"] == "tracking-1"
    assert first["userId"] == "user-1"
    assert first["sessionId"] == "s-1"
    assert first["properties"] == properties
    assert isinstance(first["sentAt"], int | float)
    assert second["eventValue"] == 9.5
    stats = server.stats()
    assert (stats["accepted_calls"], stats["accepted_events"]) == (1, 2)


def test_endpoint_from_standard_env_var(
    server: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_PERSONALIZE_EVENTS", server.url)
    put(make_client(None))
    assert server.stats()["accepted_calls"] == 1


def test_stop_flushes_events_file(events_path: Path) -> None:
    emulator = EmulatorServer(EmulatorConfig(events_file=events_path))
    emulator.start()
    put(make_client(emulator.url), event(), event())
    emulator.stop()
    assert len(events_path.read_text().splitlines()) == 2
    assert emulator.stats()["accepted_events"] == 2  # Final counts stay readable.
    emulator.flush()  # A no-op once stopped, not an error.


@pytest.mark.parametrize(
    ("request_changes", "field"),
    [
        ({"eventList": [event(properties=json.dumps({"userId": "u"}))]}, "eventList[0].properties"),
        ({"eventList": [event(properties="not json")]}, "eventList[0].properties"),
        (
            {"eventList": [event(sentAt=datetime.now(UTC) + timedelta(days=3))]},
            "eventList[0].sentAt",
        ),
        ({"userId": "u" * 257}, "userId"),
        ({"eventList": [event()] * 11}, "eventList"),
    ],
    ids=["reserved_key", "properties_not_json", "sent_at_future", "user_id_too_long", "11_events"],
)
def test_invalid_input_names_the_field(
    server: EmulatorServer, request_changes: dict[str, Any], field: str
) -> None:
    # Client-side validation off, so the emulator (not botocore) is what rejects the call.
    client = make_client(server.url, parameter_validation=False)
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        put(client, **request_changes)
    assert error_code(caught.value) == "InvalidInputException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert field in caught.value.response["Error"]["Message"]
    assert server.stats()["rejected_calls"] == 1


def test_malformed_json_is_rejected(server: EmulatorServer) -> None:
    status, headers, body = raw_request(server, "POST", "/events", b"{nope", SIGNED_HEADERS)
    assert status == 400
    assert headers["x-amzn-errortype"] == "SerializationException"
    assert body["message"]


def test_unknown_member_is_rejected(server: EmulatorServer) -> None:
    payload: dict[str, Any] = {
        "trackingId": "t",
        "sessionId": "s",
        "eventList": [{"eventType": "x", "sentAt": 1}],
        "extra": 1,
    }
    status, headers, body = raw_request(
        server, "POST", "/events", json.dumps(payload).encode(), SIGNED_HEADERS
    )
    assert (status, headers["x-amzn-errortype"]) == (400, "InvalidInputException")
    assert "extra" in body["message"]


def test_sent_at_in_milliseconds_is_rejected(server: EmulatorServer) -> None:
    # boto3 cannot even serialize epoch milliseconds (year out of range), so send JSON directly.
    event_ms = {"eventType": "click", "sentAt": int(time.time() * 1000)}
    payload = {"trackingId": "t", "sessionId": "s", "eventList": [event_ms]}
    status, headers, body = raw_request(
        server, "POST", "/events", json.dumps(payload).encode(), SIGNED_HEADERS
    )
    assert (status, headers["x-amzn-errortype"]) == (400, "InvalidInputException")
    assert "eventList[0].sentAt" in body["message"]
    assert "milliseconds" in body["message"]


# --- signature and routing ------------------------------------------------------------------


def test_missing_signature_is_rejected(server: EmulatorServer) -> None:
    status, headers, body = raw_request(server, "POST", "/events", b"{}")
    assert status == 403
    assert headers["x-amzn-errortype"] == "MissingAuthenticationTokenException"
    assert body == {"message": "Missing Authentication Token"}
    assert server.stats()["auth_failures"] == 1


def test_unsigned_boto3_call_gets_missing_token_error(server: EmulatorServer) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        put(make_client(server.url, signature_version=UNSIGNED))
    assert error_code(caught.value) == "MissingAuthenticationTokenException"


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        ("AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/personalize/aws4_request",
         "IncompleteSignatureException"),
        ("Bearer abc", "IncompleteSignatureException"),
        (SIGNED_HEADERS["Authorization"].replace("/personalize/", "/s3/"),
         "InvalidSignatureException"),
    ],
    ids=["no_signature_params", "not_sigv4", "wrong_service_scope"],
)  # fmt: skip
def test_bad_signature_is_rejected(server: EmulatorServer, authorization: str, code: str) -> None:
    headers = {**SIGNED_HEADERS, "Authorization": authorization}
    status, response_headers, _ = raw_request(server, "POST", "/events", b"{}", headers)
    assert (status, response_headers["x-amzn-errortype"]) == (403, code)


def test_missing_date_is_incomplete_signature(server: EmulatorServer) -> None:
    authorization = SIGNED_HEADERS["Authorization"]
    status, response_headers, body = raw_request(
        server, "POST", "/events", b"{}", {"Authorization": authorization}
    )
    assert (status, response_headers["x-amzn-errortype"]) == (403, "IncompleteSignatureException")
    assert "X-Amz-Date" in body["message"]


def test_other_paths_and_methods_are_unknown(server: EmulatorServer) -> None:
    # The five operations are served (tests/testing/emulator/test_server_operations.py); any
    # other path, or another method on theirs, is not an operation.
    for method, path in [("GET", "/nowhere"), ("POST", "/events/x"), ("GET", "/events")]:
        status, headers, body = raw_request(server, method, path, headers=SIGNED_HEADERS)
        assert (status, headers["x-amzn-errortype"]) == (404, "UnknownOperationException")
        assert body["message"]
    assert server.stats()["unknown_operations"] == 3
