"""A local Amazon Personalize Events endpoint over real HTTP or HTTPS, with fault injection.

boto3 reaches it through `AWS_ENDPOINT_URL_PERSONALIZE_EVENTS` or `endpoint_url=`; over HTTPS
(`EmulatorConfig(tls=True)`, `--tls`) it trusts the emulator's local CA through `AWS_CA_BUNDLE`
or `verify=` (`EmulatorServer.ca_file`), as production calls AWS over HTTPS. It checks
SigV4 is present (not its value: any dummy credentials work), validates PutEvents bodies with
`consumer.mapping.validation`, and appends accepted events to a JSON-lines file (with `accepted_at`,
each line also says when the answer left). Other operations get 404 `UnknownOperationException`.

Faults, for PutEvents only, drawn per call in this order:
- `outage`: the connection is closed without an answer; botocore raises
  `ConnectionClosedError` (retried as a connection error). A closed socket rather than a 503,
  because an unreachable endpoint is the case a consumer must survive.
- `access_denied`: 403 `AccessDeniedException`.
- `throttle_ratio`: 400 `ThrottlingException`.
- `error_5xx_ratio`: 500 `InternalServerError` or 503 `ServiceUnavailable`, half each.
- `latency_ms`: delays every answer (non-blocking), whatever it is.
- `reject_event_types`: a call that passes validation but holds an event of one of these types
  gets 400 `InvalidInputException` naming `eventList[i].eventType` (never the value), and none of
  its events are accepted: bad input only the service can judge, as one bad event rejects a
  whole PutEvents call.
- `access_keys`: when set, the only access key ids the account has; a call signed with another
  gets 403 `UnrecognizedClientException` (checked with the signature, before anything else).
- `tracking_ids`: when set, the only event trackers there are; a valid call for another gets
  404 `ResourceNotFoundException`.

Admin API, never faulted: `GET|POST /_emulator/faults` (partial JSON updates),
`GET /_emulator/stats`, `POST /_emulator/stats/reset`, `POST /_emulator/flush`,
`GET /_emulator/health`.
"""

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
