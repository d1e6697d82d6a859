"""A local Amazon Personalize Events endpoint over real HTTP or HTTPS, with fault injection.

It serves all five operations of boto3's `personalize-events` client, at the methods and paths
botocore's model gives them: PutEvents (`POST /events`), PutItems (`POST /items`), PutUsers
(`POST /users`), PutActions (`POST /actions`) and PutActionInteractions
(`POST /action-interactions`). Any other request gets 404 `UnknownOperationException`.

boto3 reaches it through `AWS_ENDPOINT_URL_PERSONALIZE_EVENTS` or `endpoint_url=`; over HTTPS
(`EmulatorConfig(tls=True)`, `--tls`) it trusts the emulator's local CA through `AWS_CA_BUNDLE`
or `verify=` (`EmulatorServer.ca_file`), as production calls AWS over HTTPS. It checks
SigV4 is present (not its value: any dummy credentials work), validates bodies with
`consumer.mapping.validation` (400 `InvalidInputException`), and appends one JSON line per
accepted entry to an events file (with `accepted_at`, each line also says when the answer left).
PutEvents lines are `{"trackingId", "userId", "sessionId", **event}`; the other operations'
are `{"operation", "datasetArn", **entry}` (PutActionInteractions: `"trackingId"` instead).

Faults, for all five operations, drawn per call in this order:
- `outage`: the connection is closed without an answer; botocore raises
  `ConnectionClosedError` (retried as a connection error). A closed socket rather than a 503,
  because an unreachable endpoint is the case a consumer must survive.
- `access_denied`: 403 `AccessDeniedException` naming the operation (`personalize:PutItems`).
- `throttle_ratio`: 400 `ThrottlingException`.
- `error_5xx_ratio`: 500 `InternalServerError` or 503 `ServiceUnavailable`, half each.
- `latency_ms`: delays every answer (non-blocking), whatever it is.
- `access_keys`: when set, the only access key ids the account has; a call signed with another
  gets 403 `UnrecognizedClientException` (checked with the signature, before anything else).
- `tracking_ids`: when set, the only event trackers there are; a valid PutEvents or
  PutActionInteractions call for another gets 404 `ResourceNotFoundException`.
- `dataset_arns`: when set, the only datasets there are; a valid PutItems, PutUsers or
  PutActions call for another gets 404 `ResourceNotFoundException` ("Dataset not found").
- `reject_event_types`: a PutEvents or PutActionInteractions call that passes validation but
  holds an event (action interaction) of one of these types gets 400 `InvalidInputException`
  naming `eventList[i].eventType` (`actionInteractions[i].eventType`), never the value, and none
  of its entries are accepted: bad input only the service can judge, as one bad event rejects a
  whole call. Both are calls to an event tracker, which is what knows event types.

Admin API, never faulted: `GET|POST /_emulator/faults` (partial JSON updates),
`GET /_emulator/stats`, `POST /_emulator/stats/reset`, `POST /_emulator/flush`,
`GET /_emulator/health`."""

from __future__ import annotations

from consumer.testing.emulator.cli import add_emulator_arguments, run_emulator_command
from consumer.testing.emulator.faults import FaultError, Faults
from consumer.testing.emulator.server import EmulatorConfig, EmulatorServer, serve_forever

__all__ = [
    "EmulatorConfig",
    "EmulatorServer",
    "FaultError",
    "Faults",
    "add_emulator_arguments",
    "run_emulator_command",
    "serve_forever",
]
