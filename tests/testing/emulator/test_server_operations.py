"""The emulator's four operations besides PutEvents (PutItems, PutUsers, PutActions,
PutActionInteractions) over real HTTP with a real boto3 client: accepted calls recorded line by
line, invalid input refused by the emulator (not botocore), and every fault applying to them as
it does to PutEvents, plus `dataset_arns`, set in process, through the admin API or the CLI."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest

from consumer.testing.emulator import EmulatorConfig, EmulatorServer
from consumer.testing.emulator.events_file import EventsFile
from tests.testing.emulator.server_support import (
    SIGNED_HEADERS,
    error_code,
    make_client,
    put,
    raw_request,
    wait_until,
)

DATASET = "arn:aws:personalize:us-east-1:123456789012:dataset/shop/ITEMS"
OTHER_DATASET = "arn:aws:personalize:us-east-1:123456789012:dataset/shop/GONE"
TRACKER = "tracking-1"
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

#: operation -> (boto3 method, list member, target member, target, stats counter, path)
OPS: dict[str, tuple[str, str, str, str, str, str]] = {
    "PutItems": ("put_items", "items", "datasetArn", DATASET, "accepted_items", "/items"),
    "PutUsers": ("put_users", "users", "datasetArn", DATASET, "accepted_users", "/users"),
    "PutActions": ("put_actions", "actions", "datasetArn", DATASET, "accepted_actions", "/actions"),
    "PutActionInteractions": (
        "put_action_interactions",
        "actionInteractions",
        "trackingId",
        TRACKER,
        "accepted_action_interactions",
        "/action-interactions",
    ),
}
CATALOG = ["PutItems", "PutUsers", "PutActions"]


def entry(operation: str, n: int = 1, **changes: Any) -> dict[str, Any]:
    """One valid entry of `operation`, every optional member set, so all must be recorded."""
    base: dict[str, Any]
    if operation == "PutActionInteractions":
        base = {
            "actionId": f"action-{n}",
            "userId": "user-1",
            "sessionId": "s-1",
            "timestamp": NOW,
            "eventType": "Taken",
            "eventId": f"e-{n}",
            "recommendationId": "r-1",
            "impression": ["action-1", "action-2"],
            "properties": json.dumps({"channel": "web"}),
        }
    else:
        id_key = {"PutItems": "itemId", "PutUsers": "userId", "PutActions": "actionId"}[operation]
        base = {id_key: f"{id_key[:-2]}-{n}", "properties": json.dumps({"color": "red", "n": n})}
    base.update(changes)
    return base


def call(client: Any, operation: str, *entries: dict[str, Any], **request: Any) -> dict[str, Any]:
    method, member, target_key, target, _, _ = OPS[operation]
    params = {target_key: target, member: list(entries or [entry(operation)]), **request}
    result: dict[str, Any] = getattr(client, method)(**params)
    return result


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def expected_line(operation: str, sent: dict[str, Any]) -> dict[str, Any]:
    """What the events file holds for `sent`: as on the wire (timestamps as epoch seconds)."""
    _, _, target_key, target, _, _ = OPS[operation]
    wire = {k: v.timestamp() if isinstance(v, datetime) else v for k, v in sent.items()}
    return {"operation": operation, target_key: target, **wire}


# --- accepted calls -------------------------------------------------------------------------


@pytest.mark.parametrize("operation", list(OPS))
def test_accepted_call_is_recorded_with_its_fields(
    server: EmulatorServer, client: Any, events_path: Path, operation: str
) -> None:
    sent = [entry(operation, 1), entry(operation, 2)]
    response = call(client, operation, *sent)

    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert response["ResponseMetadata"]["RequestId"]
    wait_until(lambda: len(lines(events_path)) == 2)  # the periodic flush, no explicit one
    assert lines(events_path) == [expected_line(operation, each) for each in sent]
    stats = server.stats()
    counter = OPS[operation][4]
    assert (stats["accepted_calls"], stats[counter], stats["accepted_events"]) == (1, 2, 0)
    assert sum(v for k, v in stats.items() if k.startswith("accepted_")) == 3  # no other counter


def test_line_format_is_exact_and_put_events_lines_are_unchanged(
    client: Any, events_path: Path, server: EmulatorServer
) -> None:
    call(client, "PutItems", {"itemId": "i-1", "properties": '{"a": 1}'}, {"itemId": "i-2"})
    put(client)
    server.flush()
    raw = events_path.read_text().splitlines()
    assert raw[:2] == [
        '{"operation":"PutItems","datasetArn":"' + DATASET + '","itemId":"i-1",'
        '"properties":"{\\"a\\": 1}"}',
        '{"operation":"PutItems","datasetArn":"' + DATASET + '","itemId":"i-2"}',
    ]
    assert list(json.loads(raw[2]))[:3] == ["trackingId", "userId", "sessionId"]
    assert "operation" not in json.loads(raw[2])


@pytest.mark.parametrize("operation", list(OPS))
def test_accepted_at_ends_each_line(tmp_path: Path, operation: str) -> None:
    path = tmp_path / "events.jsonl"
    with EmulatorServer(EmulatorConfig(events_file=path, accepted_at=True)) as emulator:
        before = datetime.now(UTC).timestamp()
        call(make_client(emulator.url), operation, entry(operation))
    (line,) = lines(path)
    assert list(line)[-1] == "acceptedAt"
    assert before <= line.pop("acceptedAt") <= datetime.now(UTC).timestamp()
    assert line == expected_line(operation, entry(operation))


def test_append_entries_without_and_with_accepted_at(tmp_path: Path) -> None:
    for stamped in (False, True):
        path = tmp_path / f"entries-{stamped}.jsonl"
        events_file = EventsFile(path, accepted_at=stamped)
        events_file.append_entries("PutUsers", "datasetArn", DATASET, [{"userId": "u"}], 12.5)
        events_file.close()
        stamp = {"acceptedAt": 12.5} if stamped else {}
        assert lines(path) == [
            {"operation": "PutUsers", "datasetArn": DATASET, "userId": "u", **stamp}
        ]


# --- invalid input --------------------------------------------------------------------------

_INVALID: list[tuple[str, dict[str, Any], str, bool]] = [
    # (operation, request changes or entry changes under "entry", field named, botocore checks)
    *[(op, {"entries": 11}, OPS[op][1], True) for op in OPS],
    *[(op, {"entry": {"properties": "[1]"}}, f"{OPS[op][1]}[0].properties", True) for op in OPS],
    *[(op, {"datasetArn": "not-an-arn"}, "datasetArn", True) for op in CATALOG],
    ("PutItems", {"entry": {"itemId": ""}}, "items[0].itemId", False),
    ("PutUsers", {"entry": {"userId": ""}}, "users[0].userId", False),
    ("PutActions", {"entry": {"actionId": ""}}, "actions[0].actionId", False),
    ("PutActionInteractions", {"entry": {"actionId": ""}}, "actionInteractions[0].actionId", False),
    (
        "PutActionInteractions",
        {"entry": {"properties": json.dumps({"userId": "u"})}},
        "actionInteractions[0].properties",
        True,
    ),
    ("PutActionInteractions", {"entry": {"recommendationId": "r" * 41}}, "recommendationId", True),
]


@pytest.mark.parametrize(
    ("operation", "change", "field", "client_checks"),
    _INVALID,
    ids=[f"{op}-{field}" for op, _, field, _ in _INVALID],
)
def test_invalid_call_is_refused_naming_the_field(
    server: EmulatorServer,
    events_path: Path,
    operation: str,
    change: dict[str, Any],
    field: str,
    client_checks: bool,
) -> None:
    # botocore checks required members and minimum lengths client-side: for those, turn its
    # validation off, so the emulator is what refuses the call. The others pass botocore as is.
    client = make_client(server.url, parameter_validation=client_checks)
    change = dict(change)
    entries = [entry(operation, 1, **change.pop("entry", {}))] * change.pop("entries", 1)
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        call(client, operation, *entries, **change)
    assert error_code(caught.value) == "InvalidInputException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    message = caught.value.response["Error"]["Message"]
    assert message.startswith("1 validation error detected: ") and field in message
    server.flush()
    assert lines(events_path) == []
    stats = server.stats()
    assert (stats["rejected_calls"], stats["accepted_calls"], stats[OPS[operation][4]]) == (1, 0, 0)


@pytest.mark.parametrize("operation", list(OPS))
def test_malformed_json_and_unknown_members_are_refused(
    server: EmulatorServer, operation: str
) -> None:
    path = OPS[operation][5]
    status, headers, _ = raw_request(server, "POST", path, b"[nope", SIGNED_HEADERS)
    assert (status, headers["x-amzn-errortype"]) == (400, "SerializationException")
    body = json.dumps({OPS[operation][2]: OPS[operation][3], "extra": 1}).encode()
    status, headers, answer = raw_request(server, "POST", path, body, SIGNED_HEADERS)
    assert (status, headers["x-amzn-errortype"]) == (400, "InvalidInputException")
    assert "2 validation errors detected" in answer["message"] and "extra" in answer["message"]
    stats = server.stats()
    assert (stats["serialization_errors"], stats["rejected_calls"]) == (1, 1)


# --- faults ---------------------------------------------------------------------------------


@pytest.mark.parametrize("operation", list(OPS))
def test_throttling(server: EmulatorServer, client: Any, operation: str) -> None:
    server.set_faults(throttle_ratio=1.0)
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        call(client, operation)
    assert error_code(caught.value) == "ThrottlingException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert (server.stats()["throttled"], server.stats()["accepted_calls"]) == (1, 0)


@pytest.mark.parametrize("operation", list(OPS))
def test_other_faults_apply_to_every_operation(
    server: EmulatorServer, client: Any, operation: str
) -> None:
    server.set_faults(access_denied=True)
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        call(client, operation)
    assert error_code(caught.value) == "AccessDeniedException"
    assert caught.value.response["Error"]["Message"].endswith(f"personalize:{operation}")
    server.set_faults(access_denied=False, error_5xx_ratio=1.0)
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        call(client, operation)
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] in (500, 503)
    server.set_faults(error_5xx_ratio=0.0, access_keys=["rotated"])
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        call(client, operation)
    assert error_code(caught.value) == "UnrecognizedClientException"
    server.set_faults(access_keys=[], outage=True)
    with pytest.raises(botocore.exceptions.ConnectionClosedError):
        call(make_client(server.url), operation)
    server.set_faults(outage=False, latency_ms=50)
    call(client, operation)
    status, headers, _ = raw_request(server, "POST", OPS[operation][5], b"{}")  # unsigned
    assert (status, headers["x-amzn-errortype"]) == (403, "MissingAuthenticationTokenException")
    stats = server.stats()
    counts = ("access_denied", "errors_5xx", "auth_failures", "outage_refusals", "accepted_calls")
    assert [stats[name] for name in counts] == [1, 1, 2, 1, 1]
    assert (stats["delayed_calls"], stats["latency_injected_ms"]) == (2, 100)


@pytest.mark.parametrize("operation", CATALOG)
def test_a_dataset_the_account_does_not_have_is_not_found_after_validation(
    server: EmulatorServer, client: Any, events_path: Path, operation: str
) -> None:
    server.set_faults(dataset_arns=[DATASET], tracking_ids=["other-tracker"])
    call(client, operation)  # tracking_ids has no say over datasets
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        call(client, operation, datasetArn=OTHER_DATASET)
    assert error_code(caught.value) == "ResourceNotFoundException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert caught.value.response["Error"]["Message"] == "Dataset not found"
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        call(client, operation, entry(operation, properties="[1]"), datasetArn=OTHER_DATASET)
    assert error_code(caught.value) == "InvalidInputException"  # bad input is reported first
    server.flush()
    assert [line["datasetArn"] for line in lines(events_path)] == [DATASET]
    stats = server.stats()
    assert (stats["unknown_datasets"], stats["unknown_trackers"], stats["accepted_calls"]) == (
        1,
        0,
        1,
    )


def test_action_interactions_answer_to_tracking_ids_not_dataset_arns(
    server: EmulatorServer, client: Any
) -> None:
    server.set_faults(dataset_arns=[OTHER_DATASET], tracking_ids=[TRACKER])
    call(client, "PutActionInteractions")
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        call(client, "PutActionInteractions", trackingId="deleted")
    assert error_code(caught.value) == "ResourceNotFoundException"
    assert caught.value.response["Error"]["Message"] == "Event tracker not found"
    stats = server.stats()
    assert (stats["unknown_trackers"], stats["unknown_datasets"]) == (1, 0)


def test_rejected_event_types_apply_to_action_interactions_only_besides_put_events(
    server: EmulatorServer, client: Any
) -> None:
    server.set_faults(reject_event_types=["Poison"])
    interactions = [entry("PutActionInteractions"), entry("PutActionInteractions", 2)]
    interactions[1]["eventType"] = "Poison"
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        call(client, "PutActionInteractions", *interactions)
    message = caught.value.response["Error"]["Message"]
    assert error_code(caught.value) == "InvalidInputException"
    assert "actionInteractions[1].eventType" in message and "Poison" not in message
    # Catalog entries have no event type: a property of that name is just a property.
    call(client, "PutItems", entry("PutItems", properties=json.dumps({"eventType": "Poison"})))
    stats = server.stats()
    assert (stats["rejected_calls"], stats["accepted_items"]) == (1, 1)


def test_admin_sets_dataset_arns(server: EmulatorServer, client: Any) -> None:
    change = json.dumps({"dataset_arns": [DATASET]}).encode()
    status, _, faults = raw_request(server, "POST", "/_emulator/faults", change)
    assert (status, faults["dataset_arns"]) == (200, [DATASET])
    assert server.faults.dataset_arns == (DATASET,)
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        call(client, "PutUsers", datasetArn=OTHER_DATASET)
    assert error_code(caught.value) == "ResourceNotFoundException"
    bad = json.dumps({"dataset_arns": DATASET}).encode()
    status, headers, body = raw_request(server, "POST", "/_emulator/faults", bad)
    assert (status, headers["x-amzn-errortype"]) == (400, "InvalidInputException")
    assert "dataset_arns" in body["message"]
    assert raw_request(server, "GET", "/_emulator/faults")[2]["dataset_arns"] == [DATASET]
    server.set_faults(dataset_arns=[])
    call(client, "PutUsers", datasetArn=OTHER_DATASET)  # an empty list lets every dataset in


def test_stats_stay_a_flat_dict_of_ints(server: EmulatorServer, client: Any) -> None:
    for operation in OPS:
        call(client, operation)
    status, _, stats = raw_request(server, "GET", "/_emulator/stats")
    assert status == 200 and stats == server.stats()
    assert all(type(value) is int for value in stats.values())
    assert stats["accepted_calls"] == stats["requests"] == 4
    assert [stats[OPS[op][4]] for op in OPS] == [1, 1, 1, 1]
    assert stats["unknown_datasets"] == 0


# --- command line ---------------------------------------------------------------------------


def test_command_line_sets_dataset_arns_and_tracking_ids(tmp_path: Path) -> None:
    events_file = tmp_path / "cli-events.jsonl"
    command = [sys.executable, "-m", "consumer.testing.emulator", "--port", "0"]
    command += ["--events-file", str(events_file), "--dataset-arn", DATASET]
    command += ["--tracking-id", TRACKER, "--tracking-id", "tracking-2"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) as process:
        try:
            assert process.stdout is not None
            with selectors.DefaultSelector() as selector:
                selector.register(process.stdout, selectors.EVENT_READ)
                assert selector.select(timeout=20), "emulator did not report readiness"
                line = process.stdout.readline().strip()
            client = make_client(line.rsplit(" ", 1)[1])
            call(client, "PutItems")
            call(client, "PutActionInteractions", trackingId="tracking-2")
            for operation, target in [("PutActions", OTHER_DATASET), ("PutEvents", "gone")]:
                with pytest.raises(botocore.exceptions.ClientError) as caught:
                    if operation == "PutEvents":
                        put(client, trackingId=target)
                    else:
                        call(client, operation, datasetArn=target)
                assert error_code(caught.value) == "ResourceNotFoundException"
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=20) == 0
        finally:
            if process.poll() is None:
                process.kill()
    assert [line["operation"] for line in lines(events_file)] == [
        "PutItems",
        "PutActionInteractions",
    ]
