"""The `emulator` subcommand: arguments and entry point, wired into the main CLI by the caller.

The emulator serves all five `personalize-events` operations (PutEvents, PutItems, PutUsers,
PutActions, PutActionInteractions); every fault flag applies to each of them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from consumer.testing.emulator.faults import FaultError, Faults
from consumer.testing.emulator.server import EmulatorConfig, serve_forever
from consumer.testing.tls import TlsMaterialError

DEFAULT_PORT = 8765
DESCRIPTION = (
    "Local Amazon Personalize Events endpoint: PutEvents, PutItems, PutUsers, PutActions and "
    "PutActionInteractions, validated and recorded, with fault injection"
)


def _ratio(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def add_emulator_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: %(default)s)"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help="port to bind, 0 for any (default: %(default)s)",
    )
    parser.add_argument(
        "--events-file",
        type=Path,
        default=None,
        help="append accepted entries (events, items, users, actions, action interactions) "
        "here as JSON lines",
    )
    parser.add_argument(
        "--accepted-at",
        action="store_true",
        help="add acceptedAt (epoch seconds the answer left) to each events-file line",
    )
    parser.add_argument("--latency-ms", type=_non_negative, default=0.0, help="delay every answer")
    parser.add_argument(
        "--throttle-ratio",
        type=_ratio,
        default=0.0,
        help="share of calls answered ThrottlingException",
    )
    parser.add_argument(
        "--error-5xx-ratio", type=_ratio, default=0.0, help="share of calls answered with a 500/503"
    )
    parser.add_argument(
        "--outage",
        action="store_true",
        help="close the connection on every call without answering",
    )
    parser.add_argument(
        "--access-denied", action="store_true", help="answer every call AccessDeniedException"
    )
    parser.add_argument(
        "--reject-event-type",
        action="append",
        default=[],
        metavar="TYPE",
        help="answer InvalidInputException to any PutEvents or PutActionInteractions call "
        "holding an event of this type (repeatable)",
    )
    parser.add_argument(
        "--tracking-id",
        action="append",
        default=[],
        metavar="ID",
        help="an event tracker the account has (repeatable); when given, PutEvents and "
        "PutActionInteractions calls for any other get ResourceNotFoundException",
    )
    parser.add_argument(
        "--dataset-arn",
        action="append",
        default=[],
        metavar="ARN",
        help="a dataset the account has (repeatable); when given, PutItems, PutUsers and "
        "PutActions calls for any other get ResourceNotFoundException",
    )
    parser.add_argument("--seed", type=int, default=None, help="seed the fault draws")
    parser.add_argument(
        "--tls",
        action="store_true",
        help="serve HTTPS with a local CA's certificate; prints the CA file to trust "
        "(AWS_CA_BUNDLE) on a second line",
    )
    parser.add_argument(
        "--tls-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="keep the CA and server certificate here, made once and reused (implies --tls; "
        "default: a temporary directory removed at exit)",
    )


def _print_ready(url: str, ca_file: Path | None) -> None:
    """The first line stays `emulator listening on URL` (scripts take its last word)."""
    print(f"emulator listening on {url}", flush=True)
    if ca_file is not None:
        print(f"emulator CA bundle: {ca_file}", flush=True)


def run_emulator_command(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM; prints `emulator listening on URL` once ready (and, with
    TLS, `emulator CA bundle: PATH` on the next line)."""
    try:
        faults = Faults(
            latency_ms=args.latency_ms,
            throttle_ratio=args.throttle_ratio,
            error_5xx_ratio=args.error_5xx_ratio,
            outage=args.outage,
            access_denied=args.access_denied,
            reject_event_types=tuple(args.reject_event_type),
            tracking_ids=tuple(args.tracking_id),
            dataset_arns=tuple(args.dataset_arn),
        )
    except FaultError as error:
        print(f"emulator: {error}", file=sys.stderr)
        return 2
    config = EmulatorConfig(
        host=args.host,
        port=args.port,
        events_file=args.events_file,
        faults=faults,
        seed=args.seed,
        accepted_at=args.accepted_at,
        tls=args.tls or args.tls_dir is not None,
        tls_dir=args.tls_dir,
    )
    try:
        serve_forever(config, on_ready=_print_ready)
    except TlsMaterialError as error:
        print(f"emulator: cannot make TLS certificates: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"emulator: cannot serve on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None, prog: str = "python -m consumer.testing.emulator") -> int:
    """`python -m consumer.testing.emulator`, and `personalize-consumer emulator`."""
    parser = argparse.ArgumentParser(prog=prog, description=DESCRIPTION)
    add_emulator_arguments(parser)
    return run_emulator_command(parser.parse_args(argv))
