"""The consumer benchmark: `bench/run` (sets up .venv) or `python bench/run.py --help`.

Starts a real Kafka broker (`consumer.testing.localkafka`, unless `--bootstrap` names one) and, per
scenario, the local PutEvents endpoint as its own process (`python -m consumer emulator
--latency-ms 20 --tls`: HTTPS as in production, the consumer trusting its CA through
`AWS_CA_BUNDLE`; plain HTTP only for `dense-http`), writes the scenario's records, runs the
consumer as its own process (`python -m consumer run --until-caught-up`) and measures it from
outside:

- throughput and call sizes from the endpoint's counters, polled every 20 ms (`/_emulator/stats`);
- CPU and peak RSS of the consumer process from `wait4` (its rusage), CPU of the endpoint and the
  broker from /proc over the same window; the consumer's CPU per kind of thread (poll loop,
  librdkafka, the AWS CRT's event loops, and the rest) from /proc/<pid>/task about once a second;
- latency from produce to acknowledged call: each record's Kafka CreateTime, matched by its derived
  eventId to its line in the endpoint's events file, whose `acceptedAt` says when the answer left
  (after the injected latency); for `hot`, when the last record of the other sessions was.

Prints a table and the targets, and writes everything to `bench/results/latest.json` (`--out`).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common import HERE, BenchError, log
from machine import machine
from processes import find_broker_pid
from report import table, target_lines, targets, thread_lines
from scenarios import Bench
from vmspeed import readings as vm_speed
from workload import Traffic

DEFAULT_OUT = HERE / "results" / "latest.json"
SCENARIOS = ("micro", "dense", "dense-http", "naive", "sparse", "live", "hot", "hot-baseline")


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError("expected KEY=VALUE")
    return key, value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=200_000, help="dense backlog size")
    parser.add_argument("--sessions", type=int, default=2_000, help="dense: sessions drawn from")
    parser.add_argument("--zipf-s", type=float, default=1.0, help="dense: Zipf exponent")
    parser.add_argument("--sparse-records", type=int, default=50_000, help="sparse backlog size")
    parser.add_argument("--naive-records", type=int, default=5_000, help="naive: record bound")
    parser.add_argument("--naive-seconds", type=float, default=60.0, help="naive: time bound")
    parser.add_argument("--live-rate", type=float, default=2_000.0, help="live: records/s")
    parser.add_argument("--live-seconds", type=float, default=20.0, help="live: how long")
    parser.add_argument(
        "--hot-records", type=int, default=100_000, help="hot: backlog size (20%% one session)"
    )
    parser.add_argument("--hot-sessions", type=int, default=1_000, help="hot: sessions in all")
    parser.add_argument("--micro-records", type=int, default=30_000)
    parser.add_argument("--partitions", type=int, default=4, help="partitions per source topic")
    parser.add_argument(
        "--latency-ms", type=float, default=20.0, help="endpoint's injected latency"
    )
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help="comma-separated subset of %(default)s (soak: see --soak)",
    )
    parser.add_argument(
        "--soak", action="store_true", help="also run the soak scenario (RSS over a long run)"
    )
    parser.add_argument("--soak-records", type=int, default=1_000_000)
    parser.add_argument("--soak-interval", type=float, default=5.0, help="soak: RSS every N s")
    parser.add_argument(
        "--profile", action="store_true", help="also profile the dense consumer with py-spy"
    )
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes: a check that everything runs (< 1 min)"
    )
    parser.add_argument(
        "--bootstrap", help="use this Kafka broker (host:port) instead of starting one"
    )
    parser.add_argument(
        "--consumer-env",
        type=_key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra setting for the consumer, e.g. MAX_IN_FLIGHT_CALLS=64 (repeatable)",
    )
    parser.add_argument(
        "--consumer-command",
        help="run this instead of `python -m consumer run` (to compare a variant); "
        "--until-caught-up is appended",
    )
    parser.add_argument("--note", help="free text stored in the JSON (e.g. what was measured)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="per consumer run, seconds")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    parser.add_argument(
        "--keep-logs", type=Path, help="copy process logs and events files into this directory"
    )
    args = parser.parse_args(argv)
    names = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = set(names) - {*SCENARIOS, "soak"}
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    if args.soak and "soak" not in names:
        names.append("soak")
    if "hot" in names and "hot-baseline" not in names:  # the hot target is their ratio
        names.insert(names.index("hot") + 1, "hot-baseline")
    args.scenario_list = names
    if args.smoke:
        args.records, args.sparse_records, args.micro_records = 2_000, 300, 2_000
        args.hot_records = 2_000
        args.naive_records, args.naive_seconds = 200, 30.0
        args.live_rate, args.live_seconds = 250.0, 2.0
        args.soak_records, args.soak_interval = 5_000, 1.0
    return args


def run_micro(args: argparse.Namespace) -> dict[str, Any]:
    """bench/micro.py in its own process, so nothing else shares its interpreter."""
    log(f"micro: decode + map of {args.micro_records:,} records on one core")
    command = [sys.executable, str(HERE / "micro.py"), "--records", str(args.micro_records)]
    command += ["--repeat", "1" if args.smoke else "3", "--json"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchError(f"micro benchmark failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["scenario"] = "micro"
    result["description"] = "decode + map + validate, one core, no network"
    return result


def run_scenario(bench: Bench, name: str) -> dict[str, Any]:
    if name == "dense":
        description = f"{bench.traffic().name}, backlog"
        return bench.backlog("dense", bench.dense_topic(), description)
    if name == "dense-http":
        description = f"{bench.traffic().name}, the dense topic again"
        return bench.backlog("dense-http", bench.dense_topic(), description, tls=False)
    if name == "naive":
        return bench.naive()
    if name == "sparse":
        topic = bench.write_topic("sparse", Traffic(sessions=None), bench.args.sparse_records)
        return bench.backlog("sparse", topic, "one event per session, backlog")
    if name == "live":
        return bench.live()
    if name == "soak":
        return bench.soak()
    if name in ("hot", "hot-baseline"):
        return bench.hot(baseline=name == "hot-baseline")
    raise BenchError(f"unknown scenario {name}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = datetime.now(UTC)
    scenarios: dict[str, dict[str, Any]] = {}
    profile: dict[str, Any] | None = None
    if "micro" in args.scenario_list:
        before = vm_speed()
        try:
            scenarios["micro"] = run_micro(args)
        except BenchError as error:
            scenarios["micro"] = {"scenario": "micro", "error": str(error)[-3000:]}
        scenarios["micro"]["vm_speed"] = [before, vm_speed()]

    kafka = None
    bootstrap_kind = "given" if args.bootstrap else "local"
    if args.bootstrap:
        bootstrap, broker_pid = args.bootstrap, find_broker_pid(args.bootstrap, None)
    else:
        from consumer.testing.localkafka import LocalKafka

        log("starting a local Kafka broker")
        kafka = LocalKafka(partitions_default=args.partitions).start()
        bootstrap, broker_pid = kafka.bootstrap_servers, find_broker_pid("", kafka.workdir)
    with tempfile.TemporaryDirectory(prefix="personalize-bench-") as tmp:
        bench = Bench(args, bootstrap, broker_pid, Path(tmp))
        try:
            for name in args.scenario_list:
                if name == "micro":
                    continue  # measured above, before the broker starts
                before = vm_speed()  # the machine's speed around the scenario (vmspeed.py)
                try:
                    scenarios[name] = run_scenario(bench, name)
                except BenchError as error:  # report it, measure the others
                    log(f"{name} failed: {error}")
                    scenarios[name] = {"scenario": name, "error": str(error)[-3000:]}
                scenarios[name]["vm_speed"] = [before, vm_speed()]
            if args.profile:
                try:
                    profile = bench.profile()
                except BenchError as error:
                    profile = {"error": str(error)[-3000:]}
        finally:
            if args.keep_logs is not None:
                args.keep_logs.mkdir(parents=True, exist_ok=True)
                for path in Path(tmp).iterdir():
                    if path.is_file():  # not the endpoint's TLS directory (its CA is throwaway)
                        shutil.copy(path, args.keep_logs / path.name)
            bench.cleanup()
            if kafka is not None:
                kafka.stop()
    for result in scenarios.values():
        result.pop("rss_samples", None)
    found = targets(scenarios)
    top = bench.traffic().top_session_share()
    report = {
        "date": started.isoformat(timespec="seconds"),
        "note": args.note,
        "machine": machine(bootstrap_kind),
        "settings": {
            key: (str(value) if isinstance(value, Path) else value)
            for key, value in vars(args).items()
            if key != "scenario_list"
        }
        | {"consumer_env": dict(args.consumer_env), "dense_top_session_share": top},
        "scenarios": scenarios,
        "targets": [asdict(t) for t in found],
        "profile": profile,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(table(scenarios))
    print()
    if threads := thread_lines(scenarios):
        print(threads)
        print()
    print(target_lines(found))
    print(f"\nresults: {args.out}")
    errors = [name for name, result in scenarios.items() if "error" in result]
    if errors:
        print(f"bench: failed: {', '.join(errors)} (see the JSON)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as error:
        print(f"bench: {error}", file=sys.stderr)
        sys.exit(1)
