"""`personalize-consumer` command line: run, replay and check; the emulator and the demo.

Exit codes: 0 done, 2 configuration error (`ConfigError`), 3 stopped by a fatal error
(`FatalError`): each with one line on stderr that says what to fix. The development commands
(`emulator`, `demo`) import `consumer.testing` only when they run.
"""

from __future__ import annotations

import argparse
import sys

from consumer.config import environment_help, load_settings
from consumer.errors import ConfigError, FatalError
from consumer.ops.logs import configure_logging
from consumer.ops.memory import limit_malloc_arenas

EXIT_CONFIG = 2
EXIT_FATAL = 3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="personalize-consumer",
        description="Feed Amazon Personalize PutEvents from Avro clickstream topics in Kafka.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def configured(name: str, summary: str) -> argparse.ArgumentParser:
        """A command configured by the environment: its --help lists the variables."""
        return commands.add_parser(
            name,
            help=summary,
            epilog=environment_help(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    run_cmd = configured("run", "consume and send (configured by environment)")
    run_cmd.add_argument(
        "--until-caught-up",
        action="store_true",
        help="exit 0 once every assigned partition is committed up to its end",
    )

    # Its arguments are the emulator's own (`emulator --help`): `consumer.testing` is imported
    # only when it runs, never by `run`.
    commands.add_parser(
        "emulator",
        help="local personalize-events endpoint (all five operations) for tests/demo",
        add_help=False,
    )

    replay_cmd = configured(
        "replay", "send what now maps from DEAD_LETTER_TOPIC (own group, resumable)"
    )
    replay_cmd.add_argument(
        "--until-caught-up", action="store_true", help="exit 0 once the dead-letter topic is done"
    )

    check_cmd = configured(
        "check", "read records and show how they map, without committing or calling AWS"
    )
    check_cmd.add_argument("--topic", help="topic to read (default: the first of SOURCE_TOPICS)")
    check_cmd.add_argument(
        "--dead-letter", action="store_true", help="read DEAD_LETTER_TOPIC (e.g. after a fix)"
    )
    check_cmd.add_argument("--records", type=int, default=1000, help="how many to read")
    check_cmd.add_argument(
        "--show-values", action="store_true", help="print user ids, item ids and properties"
    )

    demo_cmd = commands.add_parser("demo", help="local broker + endpoint + sample data, end to end")
    demo_cmd.add_argument("--records", type=int, default=2000, help="valid records to write")

    args, rest = parser.parse_known_args(argv)
    if args.command == "emulator":
        from consumer.testing.emulator.cli import main as emulator

        return emulator(rest, prog="personalize-consumer emulator")
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "check":
        return _check(args)
    if args.command == "demo":
        from consumer.testing.demo import run_demo

        return run_demo(records=args.records)
    return _run(args.until_caught_up, replay=args.command == "replay")


def _check(args: argparse.Namespace) -> int:
    try:
        settings = load_settings()
        from consumer.check import check

        topic = settings.dead_letter_topic if args.dead_letter else args.topic
        report = check(
            settings,
            topic or settings.source_topics[0],
            args.records,
            show_values=args.show_values,
            dead_letter=args.dead_letter,
        )
    except ConfigError as exc:
        print(f"personalize-consumer: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except FatalError as exc:
        print(f"personalize-consumer: stopped: {exc}", file=sys.stderr)
        return EXIT_FATAL
    print(report.render())
    return 0


def _run(until_caught_up: bool, replay: bool = False) -> int:
    limit_malloc_arenas()  # before librdkafka and the CRT start their threads
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"personalize-consumer: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(settings.log_level)
    from consumer.app import run

    try:
        summary = run(settings, until_caught_up=until_caught_up, replay=replay)
    except ConfigError as exc:  # found while building the pipeline, before connecting
        print(f"personalize-consumer: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except FatalError as exc:
        print(f"personalize-consumer: stopped: {exc}", file=sys.stderr)
        return EXIT_FATAL
    print(f"personalize-consumer: {summary.line()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
