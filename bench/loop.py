"""The poll loop without Kafka: `python bench/loop.py --help`.

The consumer's own `Pipeline`, `Transform` and sender (`Delivery` on the AWS Common Runtime) as
`run` builds them, against the local endpoint over HTTPS with its 20 ms latency, fed from an
in-memory source of dense sample records (4 partitions, keyed by session as the benchmark
writes them). What it leaves out is librdkafka (about 1 s of CPU per 200,000 records in the
`dense` scenario), so a change to the loop shows in seconds instead of a full `bench/run`.
It is a tool for finding where the time goes, not a figure for the README: those come from
`bench/run`.

Prints CPU per event of the whole process and of each kind of thread, events per call, and
events per CPU-second; with `--rss-every`, RSS over the run (the soak's measure, without Kafka:
the records themselves are in memory from the start, so compare the run with itself).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path
from typing import Any

from common import log
from endpoint import Endpoint
from threadcpu import ThreadCpu
from workload import Traffic, encoded_records

from consumer.ops.metrics import NS
from consumer.records import TP, SourceRecord
from consumer.source.budget import Budget

PARTITIONS = 4


class MemorySource:
    """Partitions as in-memory lists, fetched in `batch_size` slices, paused by the budget."""

    def __init__(self, logs: dict[TP, list[bytes]], batch_size: int, max_buffered: int) -> None:
        self._logs = logs
        self._positions = dict.fromkeys(logs, 0)
        self._batch_size = batch_size
        self._budget = Budget(max_buffered)
        self._listener: Any = None
        self._stopped = False
        self.committed: dict[TP, int] = {}
        self.fatal = None
        self.holding = False

    @property
    def assigned(self) -> int:
        return len(self._logs)

    @property
    def paused(self) -> bool:
        return self._budget.full

    def subscribe(self, listener: Any) -> None:
        self._listener = listener
        listener.on_assigned(dict.fromkeys(self._logs, 1))

    def consume(self, timeout_s: float) -> list[SourceRecord]:
        if self._budget.full or self._stopped:
            if timeout_s:
                time.sleep(min(timeout_s, 0.005))  # as librdkafka waits on an empty fetch
            return []
        records: list[SourceRecord] = []
        per_partition = max(1, self._batch_size // len(self._logs))
        for tp, values in self._logs.items():
            start = self._positions[tp]
            end = min(len(values), start + per_partition)
            records += [
                SourceRecord(tp[0], tp[1], o, b"k", values[o], [], 1_700_000_000_000, 1)
                for o in range(start, end)
            ]
            self._positions[tp] = end
        return records

    def held(self, tp: TP) -> bool:
        return False

    def hold(self, record: SourceRecord, cause: Exception) -> None:
        raise RuntimeError(f"the loop benchmark's records never hold: {cause}")

    def recovered(self, tp: TP) -> None:
        pass

    def backpressure(self, unfinished: int, busiest: int) -> None:
        self._budget.update(unfinished, busiest)

    def stop_fetching(self) -> None:
        self._stopped = True

    def commit(self, positions: dict[TP, int]) -> None:
        self.committed.update(positions)

    def caught_up(self) -> bool:
        return all(self.committed.get(tp, 0) == len(v) for tp, v in self._logs.items())

    def close(self) -> None:
        pass


def partitioned(traffic: Traffic, count: int) -> dict[TP, list[bytes]]:
    """The records as a keyed producer spreads them (a session stays on one partition)."""
    logs: dict[TP, list[bytes]] = {("bench", p): [] for p in range(PARTITIONS)}
    for key, value in encoded_records(traffic, count):
        logs[("bench", zlib.crc32(key) % PARTITIONS)].append(value)
    return logs


class RssSampler:
    """RSS (from /proc) and records committed, every `every_s` seconds, on its own thread."""

    def __init__(self, source: MemorySource, every_s: float) -> None:
        self.samples: list[tuple[float, float, int]] = []  # (seconds, MB, records committed)
        self._source, self._every_s = source, every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss", daemon=True)

    def __enter__(self) -> RssSampler:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._every_s):
            with open("/proc/self/status") as status:
                kb = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
            done = sum(self._source.committed.values())
            self.samples.append((time.monotonic() - self._started, kb / 1024, done))


def measure(
    records: int, sparse: bool, latency_ms: float, http: bool, rss_every_s: float = 0.0
) -> dict[str, Any]:
    from consumer.app import build_sender, build_transform, quiet_cycle_collector
    from consumer.config import load_settings
    from consumer.deadletter import LeaveInPlace
    from consumer.ops.health import Health
    from consumer.ops.metrics import Metrics
    from consumer.pipeline import Pipeline, Tuning

    traffic = Traffic(sessions=None) if sparse else Traffic()
    logs = partitioned(traffic, records)
    with tempfile.TemporaryDirectory() as tmp:
        endpoint = Endpoint(
            latency_ms, None, Path(tmp) / "emulator.log", None if http else Path(tmp)
        )
        try:
            os.environ.update(
                AWS_ENDPOINT_URL_PERSONALIZE_EVENTS=endpoint.url,
                AWS_ACCESS_KEY_ID="bench",
                AWS_SECRET_ACCESS_KEY="bench",
            )
            if endpoint.ca_file is not None:
                os.environ["AWS_CA_BUNDLE"] = str(endpoint.ca_file)
            settings = load_settings(
                {
                    "KAFKA_BOOTSTRAP_SERVERS": "unused:9092",
                    "SOURCE_TOPICS": "bench",
                    "DEAD_LETTER_TOPIC": "bench.dead-letter",
                    "PERSONALIZE_TRACKING_ID": "bench-tracker",
                    "AWS_REGION": "us-east-1",
                }
            )
            source = MemorySource(logs, settings.consume_batch_size, settings.max_buffered_records)
            metrics = Metrics()
            pipeline = Pipeline(
                source,
                build_transform(settings),
                build_sender(settings, metrics),
                LeaveInPlace(),
                Tuning(settings.batch_linger_ms / 1000, settings.commit_interval_ms / 1000, 30.0),
                metrics,
                Health(stall_after_s=90),
            )
            quiet_cycle_collector()
            threads = ThreadCpu(os.getpid())
            threads.read()
            at_start = _split(threads)
            before = resource.getrusage(resource.RUSAGE_SELF)
            started = time.monotonic()
            sampler = RssSampler(source, rss_every_s or 3600.0)
            with sampler:
                summary = pipeline.run(threading.Event(), until_caught_up=True)
            wall = time.monotonic() - started
            after = resource.getrusage(resource.RUSAGE_SELF)
            threads.read()
            pipeline.close()
            stats = endpoint.stats()
        finally:
            endpoint.stop()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    events = stats.get("accepted_events", 0)
    calls = stats.get("accepted_calls", 0) or 1
    return {
        "records": records,
        "traffic": traffic.name,
        "tls": not http,
        "events": events,
        "calls": calls,
        "events_per_call": events / calls,
        "wall_s": wall,
        "events_per_s": events / wall,
        "cpu_s": cpu,
        "cpu_us_per_event": cpu / events * 1e6 if events else None,
        "events_per_cpu_s": events / cpu if cpu else None,
        "system_cpu_s": after.ru_stime - before.ru_stime,
        "threads": {k: round(v - at_start.get(k, 0.0), 2) for k, v in _split(threads).items()},
        "summary": str(summary),
        "mean_call_ms": _mean_call_ms(metrics),
        "rss_samples": [[round(t, 1), round(mb, 1), n] for t, mb, n in sampler.samples],
    }


def _mean_call_ms(metrics: Any) -> float | None:
    """Send to answer, as the poll loop saw it (its `call_seconds` histogram)."""
    total = metrics.total(f"{NS}_put_events_duration_seconds_sum")
    count = metrics.total(f"{NS}_put_events_duration_seconds_count")
    return total / count * 1000 if count else None


def _split(threads: ThreadCpu) -> dict[str, float]:
    kinds = threads.kinds()
    return (
        {}
        if kinds is None
        else {"poll_loop": kinds.poll_loop, "crt": kinds.crt, "other": kinds.other}
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--sparse", action="store_true", help="one event per session")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--http", action="store_true", help="plain HTTP instead of HTTPS")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument(
        "--rss-every", type=float, default=0.0, help="sample RSS every so many seconds"
    )
    args = parser.parse_args(argv)
    log(f"loop: {args.records:,} records, {'sparse' if args.sparse else 'dense'}")
    result = measure(args.records, args.sparse, args.latency_ms, args.http, args.rss_every)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print(
            f"{result['events']:,} events in {result['wall_s']:.1f} s "
            f"({result['events_per_s']:,.0f}/s, {result['events_per_call']:.2f} per call): "
            f"{result['cpu_us_per_event']:.0f} µs CPU per event "
            f"({result['events_per_cpu_s']:,.0f} per CPU-second), "
            f"system {result['system_cpu_s']:.1f} s; threads {result['threads']}; "
            f"mean call {result['mean_call_ms']:.1f} ms"
        )
        if samples := result["rss_samples"]:
            settled = [s for s in samples if s[2] >= args.records / 10] or samples
            print(
                f"RSS: {settled[0][1]:.0f} MB once a tenth was done, {samples[-1][1]:.0f} MB at "
                f"the end, peak {max(s[1] for s in samples):.0f} MB"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
