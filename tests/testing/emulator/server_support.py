"""Shared by the emulator tests: a boto3 `personalize-events` client, events and calls to send
with it, raw HTTP requests with a (fake) SigV4 signature, and polling instead of sleeping."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import boto3
import botocore.exceptions
from botocore.config import Config

from consumer.testing.emulator import EmulatorServer

REGION = "us-east-1"
SIGNED_HEADERS = {
    "Authorization": (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/personalize/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=0123abcd"
    ),
    "X-Amz-Date": "20240101T000000Z",
    "Content-Type": "application/json",
}


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll instead of sleeping a fixed time: fast when things work, bounded when not."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        threading.Event().wait(0.01)


def make_client(url: str | None, verify: str | bool | None = None, **config: Any) -> Any:
    """`verify`: boto3's own (a CA bundle path; None: `AWS_CA_BUNDLE` or the system's)."""
    # total_max_attempts=1: no retries. Note `max_attempts` counts retries, not attempts.
    options: dict[str, Any] = {"retries": {"total_max_attempts": 1}, "read_timeout": 10}
    options.update(config)
    return boto3.session.Session().client(
        "personalize-events",
        region_name=REGION,
        endpoint_url=url,
        verify=verify,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(**options),
    )


def event(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"eventType": "click", "sentAt": datetime.now(UTC), "itemId": "item-1"}
    base.update(changes)
    return base


def put(client: Any, *events: dict[str, Any], **request: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "trackingId": "tracking-1",
        "userId": "user-1",
        "sessionId": "s-1",
        "eventList": list(events or [event()]),
    }
    params.update(request)
    result: dict[str, Any] = client.put_events(**params)
    return result


def raw_request(
    server: EmulatorServer,
    method: str,
    path: str,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
) -> tuple[int, dict[str, str], Any]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=dict(headers or {}))
        response = connection.getresponse()
        payload = json.loads(response.read() or b"null")
        return response.status, {k.lower(): v for k, v in response.getheaders()}, payload
    finally:
        connection.close()


def error_code(error: botocore.exceptions.ClientError) -> str:
    return str(error.response["Error"]["Code"])
