"""The consumer benchmark: `bench/run` (sets up .venv) or `python bench/run.py --help`.

Starts a real Kafka broker (`consumer.localkafka`, unless `--bootstrap` names one) and, per
scenario, the local PutEvents endpoint as its own process (`python -m consumer emulator
--latency-ms 20`), writes the scenario's records, runs the consumer as its own process
(`python -m consumer run --until-caught-up`) and measures it from outside:

- throughput and call sizes from the endpoint's counters, polled every 20 ms (`/_emulator/stats`);
- CPU and peak RSS of the consumer process from `wait4` (its rusage), CPU of the endpoint and the
  broker from /proc over the same window;
- latency from produce to acknowledged call: each record's Kafka CreateTime, matched by its derived
  eventId to its line in the endpoint's events file, whose order is the order of acceptance, timed
  by the polled counters (plus the injected latency, after which the answer leaves).

Prints a table and the targets, and writes everything to `bench/results/latest.json` (`--out`).
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import hotspots
import workload
from workload import ProduceLog, Traffic

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results" / "latest.json"
SCENARIOS = ("micro", "dense", "naive", "sparse", "live")
_CLK_TCK = os.sysconf("SC_CLK_TCK")
_TRACKING_ID = "bench-tracker"


class BenchError(RuntimeError):
    """A scenario could not be measured (a process failed, or did not finish in time)."""


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- processes, seen from outside -------------------------------------------------------------


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds of a live (or not yet reaped) process; None if it is gone."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def rss_mb(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def find_broker_pid(bootstrap: str, workdir: Path | None) -> int | None:
    """The broker JVM on this machine: by its work directory, else by its listener port."""
    port = bootstrap.split(",")[0].rsplit(":", 1)[-1]
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        text = [a.decode(errors="replace") for a in args if a]
        if "kafka.Kafka" not in text:
            continue
        if workdir is not None and any(str(workdir) in a for a in text):
            return int(proc.name)
        properties = Path(text[-1])
        try:
            listens = re.search(rf"^listeners=.*:{port}\b", properties.read_text(), re.M)
        except OSError:
            continue
        if listens and workdir is None:
            return int(proc.name)
    return None


@dataclass
class Exited:
    """A child process that ran to the end, with its own resource usage (from `wait4`)."""

    code: int
    wall_s: float
    cpu_s: float
    system_cpu_s: float
    max_rss_mb: float
    log_tail: str
    terminated: bool


def run_process(
    command: list[str],
    env: dict[str, str],
    log_path: Path,
    monitor: Monitor,
    during: Callable[[], None] | None = None,
    finished: Callable[[], bool] | None = None,
    timeout_s: float = 3600.0,
) -> Exited:
    """Run `command` to its end; `during` runs meanwhile, SIGTERM once `finished()` holds."""
    started = time.monotonic()
    with log_path.open("w") as out:
        # Not in the repository: `python -m consumer` must import the installed package (or
        # PYTHONPATH's), not whatever the working directory holds.
        process = subprocess.Popen(
            command, env=env, cwd=log_path.parent, stdout=out, stderr=subprocess.STDOUT
        )
    monitor.start(process.pid)
    terminated = timed_out = False
    try:
        if during is not None:
            during()
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            overdue = time.monotonic() - started > timeout_s
            if not terminated and ((finished is not None and finished()) or overdue):
                process.send_signal(signal.SIGTERM)
                terminated, timed_out = True, overdue
            elif overdue and time.monotonic() - started > timeout_s + 60:
                process.kill()
            time.sleep(0.02)
    except BaseException:
        process.kill()
        process.wait()
        raise
    finally:
        monitor.stop()
    process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - started
    tail = log_path.read_text(errors="replace")[-3000:]
    if timed_out:
        raise BenchError(f"{command[2:5]} did not finish in {timeout_s:.0f} s\n{tail}")
    return Exited(
        code=process.returncode,
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        system_cpu_s=usage.ru_stime,
        max_rss_mb=usage.ru_maxrss / 1024,  # kilobytes on Linux
        log_tail=tail,
        terminated=terminated,
    )


# -- the endpoint and what it saw -------------------------------------------------------------


class StatsClient:
    """Keep-alive GETs of the emulator's counters."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self._connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)

    def get(self) -> dict[str, int]:
        self._connection.request("GET", "/_emulator/stats")
        response = self._connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise BenchError(f"emulator stats answered {response.status}")
        stats: dict[str, int] = json.loads(body)
        return stats

    def close(self) -> None:
        self._connection.close()


class Endpoint:
    """`python -m consumer emulator` in its own process, appending accepted events to a file."""

    def __init__(self, latency_ms: float, events_file: Path | None, log_path: Path) -> None:
        command = [sys.executable, "-m", "consumer", "emulator", "--port", "0"]
        command += ["--latency-ms", f"{latency_ms:g}"]
        if events_file is not None:
            command += ["--events-file", str(events_file)]
        with log_path.open("w") as err:
            self.process = subprocess.Popen(
                command, cwd=log_path.parent, stdout=subprocess.PIPE, stderr=err, text=True
            )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if not line.startswith("emulator listening on "):
            self.process.kill()
            raise BenchError(f"emulator did not start: {line!r}")
        self.url = line.rsplit(" ", 1)[1]

    @property
    def pid(self) -> int:
        return self.process.pid

    def stats(self) -> dict[str, int]:
        client = StatsClient(self.url)
        try:
            return client.get()
        finally:
            client.close()

    def stop(self) -> None:
        """SIGTERM: the emulator flushes and closes its events file, then exits."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


@dataclass(frozen=True)
class Sample:
    """The endpoint's counters at one moment, and the CPU seconds used so far by each process."""

    t: float  # epoch seconds, midpoint of the stats request
    events: int
    calls: int
    consumer_cpu: float | None
    endpoint_cpu: float | None
    broker_cpu: float | None


class Monitor:
    """Polls the endpoint's counters (and the processes' CPU) while a consumer runs.

    Keeps a sample whenever the accepted count changed, plus the last one before each change, so
    any accepted event is bracketed by two samples at most one poll apart.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        broker_pid: int | None,
        poll_s: float = 0.02,
        rss_every_s: float = 1.0,
    ) -> None:
        self._endpoint, self._broker_pid = endpoint, broker_pid
        self._poll_s, self._rss_every_s = poll_s, rss_every_s
        self.samples: list[Sample] = []
        self.rss: list[tuple[float, float, int]] = []  # (epoch s, MB, events accepted so far)
        self.events = 0
        self.consumer_pid: int | None = None
        self.error: BaseException | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-monitor", daemon=True)

    def start(self, consumer_pid: int) -> None:
        self.consumer_pid = consumer_pid
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(30)

    def _sample(self, client: StatsClient) -> Sample:
        before = time.time()
        stats = client.get()
        after = time.time()
        return Sample(
            (before + after) / 2,
            stats["accepted_events"],
            stats["accepted_calls"],
            cpu_seconds(self.consumer_pid),
            cpu_seconds(self._endpoint.pid),
            cpu_seconds(self._broker_pid),
        )

    def _run(self) -> None:
        client = StatsClient(self._endpoint.url)
        previous: Sample | None = None
        next_rss = 0.0
        try:
            while True:
                stopping = self._stopping.is_set()  # one last sample after the stop request
                sample = self._sample(client)
                if previous is None or sample.events != previous.events:
                    if previous is not None and self.samples[-1] is not previous:
                        self.samples.append(previous)
                    self.samples.append(sample)
                previous = sample
                self.events = sample.events
                if sample.t >= next_rss and (mb := rss_mb(self.consumer_pid)) is not None:
                    self.rss.append((sample.t, mb, sample.events))
                    next_rss = sample.t + self._rss_every_s
                if stopping:
                    return
                self._stopping.wait(self._poll_s)
        except BaseException as exc:
            self.error = exc
        finally:
            client.close()

    def window(self) -> tuple[Sample, Sample] | None:
        """From the last sample before the first acceptance to the first one with all of them."""
        samples = self.samples
        if not samples or samples[-1].events == 0:
            return None
        zeros = [s for s in samples if s.events == 0]
        first = zeros[-1] if zeros else samples[0]
        last = next(s for s in samples if s.events == samples[-1].events)
        return first, last

    def accepted_times(self, count: int) -> list[float]:
        """When each of the first `count` accepted events (events-file order) was accepted:
        interpolated between the two samples that bracket it."""
        times: list[float] = []
        samples = self.samples
        for lo, hi in itertools.pairwise(samples):
            step = hi.events - lo.events
            for index in range(lo.events, min(hi.events, count)):
                times.append(lo.t + (hi.t - lo.t) * (index + 1 - lo.events) / step)
        last = samples[-1].t if samples else 0.0
        times.extend([last] * (count - len(times)))
        return times


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(0, min(len(ordered) - 1, round(q * len(ordered) + 0.5) - 1))
    return ordered[rank]


def latencies_ms(
    events_file: Path, monitor: Monitor, produced: ProduceLog, ack_delay_s: float
) -> tuple[list[float], int, int]:
    """Produce-to-acknowledged latency of every accepted event that was produced in this run;
    also how many lines the file had and how many of them repeated an eventId."""
    ids: list[str] = []
    with events_file.open() as lines:
        for line in lines:
            if line.strip():
                ids.append(json.loads(line)["eventId"])
    seen: set[str] = set()
    out: list[float] = []
    accepted = monitor.accepted_times(len(ids))
    for event_id, accepted_at in zip(ids, accepted, strict=True):
        if event_id in seen:
            continue
        seen.add(event_id)
        produced_ms = produced.produced_ms.get(event_id)
        if produced_ms is not None:
            out.append((accepted_at + ack_delay_s) * 1000 - produced_ms)
    out.sort()
    return out, len(ids), len(ids) - len(seen)


# -- scenarios ---------------------------------------------------------------------------------


@dataclass
class Topic:
    name: str
    dead_letter: str
    records: int
    produced: ProduceLog
    traffic: Traffic


@dataclass
class Bench:
    args: argparse.Namespace
    bootstrap: str
    broker_pid: int | None
    tmp: Path
    topics: list[str] = field(default_factory=list)
    dense: Topic | None = None
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    # -- set-up --

    def make_topic(self, stem: str) -> tuple[str, str]:
        from consumer.samples import create_topics

        name = f"bench-{stem}-{self.run_id}"
        dead_letter = f"{name}.dead-letter"
        create_topics(self.bootstrap, {name: self.args.partitions, dead_letter: 1})
        self.topics += [name, dead_letter]
        return name, dead_letter

    def write_topic(self, stem: str, traffic: Traffic, records: int, track: bool = True) -> Topic:
        name, dead_letter = self.make_topic(stem)
        log(f"{stem}: writing {records:,} records ({traffic.name}) to {name}")
        started = time.monotonic()
        produced = workload.produce_all(
            self.bootstrap, name, workload.encoded_records(traffic, records), track
        )
        took = time.monotonic() - started
        log(f"{stem}: written in {took:.1f} s ({records / took:,.0f} records/s)")
        return Topic(name, dead_letter, records, produced, traffic)

    def dense_topic(self) -> Topic:
        if self.dense is None:
            self.dense = self.write_topic("dense", self.traffic(), self.args.records)
        return self.dense

    def traffic(self) -> Traffic:
        return Traffic(sessions=self.args.sessions, zipf_s=self.args.zipf_s)

    def consumer_env(self, topic: Topic, group: str, endpoint: Endpoint) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AWS_", "KAFKA_")) and k != "SETTINGS_FILE"
        }
        env.update(
            KAFKA_BOOTSTRAP_SERVERS=self.bootstrap,
            KAFKA_GROUP_ID=group,
            SOURCE_TOPICS=topic.name,
            DEAD_LETTER_TOPIC=topic.dead_letter,
            PERSONALIZE_TRACKING_ID=_TRACKING_ID,
            AWS_REGION="us-east-1",
            AWS_ACCESS_KEY_ID="bench",
            AWS_SECRET_ACCESS_KEY="bench",
            AWS_ENDPOINT_URL_PERSONALIZE_EVENTS=endpoint.url,
            METRICS_PORT="0",
            LOG_LEVEL="WARNING",
        )
        env.update(self.args.consumer_env)
        return env

    # -- one measured run --

    def measure(
        self,
        name: str,
        topic: Topic,
        command: Callable[[str], list[str]],
        expected: int | None,
        rss_every_s: float = 1.0,
        during: Callable[[], ProduceLog] | None = None,
        stop_when_all_accepted: bool = False,
    ) -> dict[str, Any]:
        """Run a consumer process (`command(group)`) against a fresh endpoint; measure it."""
        tracked = during is not None or topic.produced.track
        events_file = self.tmp / f"{name}.events.jsonl"
        endpoint = Endpoint(
            self.args.latency_ms,
            events_file if tracked else None,
            self.tmp / f"{name}.endpoint.log",
        )
        group = f"bench-{name}-{self.run_id}"
        produced_live: list[ProduceLog] = []
        try:
            monitor = Monitor(endpoint, self.broker_pid, rss_every_s=rss_every_s)

            def run_during() -> None:
                if during is not None:
                    produced_live.append(during())

            def all_accepted() -> bool:
                want = produced_live[0].acknowledged if produced_live else expected
                return want is not None and monitor.events >= want

            exited = run_process(
                command(group),
                self.consumer_env(topic, group, endpoint),
                self.tmp / f"{name}.consumer.log",
                monitor,
                during=run_during if during is not None else None,
                finished=all_accepted if stop_when_all_accepted else None,
                timeout_s=self.args.timeout,
            )
            stats = endpoint.stats()
        finally:
            endpoint.stop()
        if monitor.error is not None:
            raise BenchError(f"{name}: monitoring failed: {monitor.error!r}")
        if exited.code != 0:
            raise BenchError(f"{name}: consumer exited with {exited.code}\n{exited.log_tail}")
        produced = produced_live[0] if produced_live else topic.produced
        records = produced.acknowledged if produced_live else (expected or topic.records)
        result = summarize(name, records, exited, stats, monitor)
        if tracked and stats["accepted_events"]:
            ack_delay_s = self.args.latency_ms / 1000
            lat, lines, repeats = latencies_ms(events_file, monitor, produced, ack_delay_s)
            if lines != stats["accepted_events"]:
                raise BenchError(
                    f"{name}: events file has {lines} lines, "
                    f"the endpoint counted {stats['accepted_events']} events"
                )
            result["repeated_event_ids"] = repeats
            result["latency_ms"] = (
                {
                    "p50": percentile(lat, 0.50),
                    "p99": percentile(lat, 0.99),
                    "max": lat[-1],
                    "events": len(lat),
                }
                if lat
                else None
            )
        if self.args.keep_logs is None:
            events_file.unlink(missing_ok=True)
        if expected is not None and stats["accepted_events"] < expected:
            raise BenchError(
                f"{name}: endpoint accepted {stats['accepted_events']} of {expected} events"
            )
        return result

    def product_command(self, until_caught_up: bool = True) -> Callable[[str], list[str]]:
        def command(_group: str) -> list[str]:
            given = self.args.consumer_command
            run = shlex.split(given) if given else [sys.executable, "-m", "consumer", "run"]
            return [*run, "--until-caught-up"] if until_caught_up else run

        return command

    # -- scenarios --

    def backlog(self, name: str, topic: Topic, description: str) -> dict[str, Any]:
        log(f"{name}: consuming {topic.records:,} records")
        result = self.measure(name, topic, self.product_command(), expected=topic.records)
        result["description"] = description
        return result

    def naive(self) -> dict[str, Any]:
        topic = self.dense_topic()
        limit = min(self.args.naive_records, topic.records)
        script = str(HERE / "naive_consumer.py")

        def command(group: str) -> list[str]:
            return [
                sys.executable,
                script,
                *("--bootstrap", self.bootstrap, "--topic", topic.name, "--group", group),
                *("--max-records", str(limit), "--max-seconds", str(self.args.naive_seconds)),
                *("--tracking-id", _TRACKING_ID),
            ]

        log(f"naive: one call per record, up to {limit:,} records or {self.args.naive_seconds} s")
        result = self.measure("naive", topic, command, expected=None)
        result["description"] = (
            "dense workload, one PutEvents call per record, one at a time, commit per batch "
            "(the Kafka Connect sink's way); bounded prefix"
        )
        result["records"] = result["events"]
        return result

    def live(self) -> dict[str, Any]:
        traffic = self.traffic()
        count = int(self.args.live_rate * self.args.live_seconds)
        name, dead_letter = self.make_topic("live")
        records = list(workload.encoded_records(traffic, count))
        topic = Topic(name, dead_letter, count, ProduceLog(name), traffic)

        def produce() -> ProduceLog:
            group = f"bench-live-{self.run_id}"
            wait_for_assignment(self.bootstrap, group, timeout_s=120)
            log(f"live: producing {count:,} records at {self.args.live_rate:,.0f}/s")
            return workload.produce_paced(self.bootstrap, name, records, self.args.live_rate)

        result = self.measure(
            "live",
            topic,
            self.product_command(until_caught_up=False),
            expected=None,
            during=produce,
            stop_when_all_accepted=True,
        )
        result["description"] = (
            f"{traffic.name}, produced at {self.args.live_rate:,.0f} records/s while the consumer "
            "runs (stopped by SIGTERM once all were accepted): latency without a backlog"
        )
        return result

    def soak(self) -> dict[str, Any]:
        topic = self.write_topic("soak", self.traffic(), self.args.soak_records, track=False)
        log(f"soak: consuming {topic.records:,} records, RSS every {self.args.soak_interval} s")
        result = self.measure(
            "soak",
            topic,
            self.product_command(),
            expected=topic.records,
            rss_every_s=self.args.soak_interval,
        )
        rss = result.pop("rss_samples")
        if rss:
            # "first": once a tenth of the events went through (buffers have filled by then).
            settled = [r for r in rss if r[2] >= topic.records / 10] or rss
            first, last = settled[0], rss[-1]
            peak = max(r[1] for r in rss)
            result["rss"] = {
                "first_mb": first[1],
                "first_at_events": first[2],
                "last_mb": last[1],
                "peak_sampled_mb": peak,
                "growth": (last[1] - first[1]) / first[1],
                "samples": [[round(t - rss[0][0], 1), round(mb, 1), n] for t, mb, n in rss],
            }
        result["description"] = f"{topic.traffic.name}; RSS sampled over the whole run"
        return result

    def profile(self) -> dict[str, Any]:
        topic = self.dense_topic()
        py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        if not Path(py_spy).exists():
            return {"error": "py-spy not found (pip install py-spy)"}
        raw = self.tmp / "dense.pyspy.txt"
        record = [py_spy, "record", "--format", "raw", "-F", "--gil", "--rate", "100"]
        record += ["-o", str(raw), "--"]

        def command(_group: str) -> list[str]:
            return [*record, *self.product_command()(_group)]

        log(f"profile: dense consumer again under py-spy ({topic.records:,} records)")
        run = self.measure("profile", topic, command, expected=topic.records)
        if not raw.exists():
            return {"error": "py-spy wrote no profile (ptrace not permitted?)"}
        text = raw.read_text()
        summary = hotspots.aggregate(text)
        print(hotspots.render(summary, 15), file=sys.stderr)
        return {
            "command": " ".join(record[:-3]),
            "events_per_s_under_profiler": run["events_per_s"],
            **summary.as_dict(20),
        }

    def cleanup(self) -> None:
        if not self.topics:
            return
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        for future in admin.delete_topics(self.topics, operation_timeout=30).values():
            try:
                future.result(30)
            except Exception as exc:  # best effort: a leftover topic is harmless
                log(f"could not delete a topic: {exc}")


def wait_for_assignment(bootstrap: str, group: str, timeout_s: float) -> None:
    """Until the group is stable with partitions assigned (so live records are not a backlog)."""
    from confluent_kafka import ConsumerGroupState
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            description = admin.describe_consumer_groups([group])[group].result(10)
        except Exception:
            description = None
        if (
            description is not None
            and description.state == ConsumerGroupState.STABLE
            and any(m.assignment.topic_partitions for m in description.members)
        ):
            return
        time.sleep(0.2)
    raise BenchError(f"consumer group {group} got no assignment in {timeout_s:.0f} s")


def summarize(
    name: str, records: int, exited: Exited, stats: dict[str, int], monitor: Monitor
) -> dict[str, Any]:
    events, calls = stats["accepted_events"], stats["accepted_calls"]
    window = monitor.window()
    result: dict[str, Any] = {
        "scenario": name,
        "records": records,
        "events": events,
        "calls": calls,
        "wall_s": exited.wall_s,
        "consumer_cpu_s": exited.cpu_s,
        "consumer_system_cpu_s": exited.system_cpu_s,
        "peak_rss_mb": exited.max_rss_mb,
        "events_per_call": events / calls if calls else None,
        "consumer_cpu_s_per_1k_events": exited.cpu_s * 1000 / events if events else None,
        "events_per_consumer_cpu_s": events / exited.cpu_s if exited.cpu_s else None,
        "endpoint_stats": stats,
        "rss_samples": monitor.rss,
    }
    if window is not None:
        first, last = window
        seconds = max(last.t - first.t, 0.001)
        result.update(
            window_s=seconds,
            events_per_s=events / seconds,
            calls_per_s=calls / seconds,
            window_consumer_cpu_s_per_1k_events=_per_1k(first, last, "consumer_cpu", events),
            consumer_cpu_pct=_busy(first, last, "consumer_cpu", seconds),
            endpoint_cpu_pct=_busy(first, last, "endpoint_cpu", seconds),
            broker_cpu_pct=_busy(first, last, "broker_cpu", seconds),
        )
        (
            result["events_per_second_timeline"],
            result["consumer_cpu_pct_timeline"],
        ) = _timeline(monitor.samples, first.t)
    return result


def _timeline(samples: list[Sample], start: float) -> tuple[list[int], list[int]]:
    """Per whole second since `start`: events accepted, and the consumer's CPU (% of a core).

    Shows what bounds each phase: CPU near 100% is the interpreter's limit (one core, the
    GIL); a low, flat rate at low CPU is a session waiting on its own calls."""
    events: list[int] = []
    cpu: list[float] = []
    previous: Sample | None = None
    for sample in samples:
        if sample.t < start:
            continue
        second = int(sample.t - start)
        events.extend([0] * (second + 1 - len(events)))
        cpu.extend([0.0] * (second + 1 - len(cpu)))
        if previous is not None:
            events[second] += sample.events - previous.events
            if sample.consumer_cpu is not None and previous.consumer_cpu is not None:
                cpu[second] += sample.consumer_cpu - previous.consumer_cpu
        previous = sample
    return events, [round(c * 100) for c in cpu]


def _per_1k(first: Sample, last: Sample, attribute: str, events: int) -> float | None:
    before, after = getattr(first, attribute), getattr(last, attribute)
    if before is None or after is None or not events:
        return None
    return float(after - before) * 1000 / events


def _busy(first: Sample, last: Sample, attribute: str, seconds: float) -> float | None:
    before, after = getattr(first, attribute), getattr(last, attribute)
    if before is None or after is None:
        return None
    return float(after - before) / seconds * 100


# -- report ------------------------------------------------------------------------------------


def machine(bootstrap_kind: str) -> dict[str, Any]:
    import boto3
    import botocore
    import confluent_kafka
    import fastavro

    from consumer.localkafka import DEFAULT_VERSION

    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "consumer_source": consumer_source(),
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "kafka": f"Apache Kafka {DEFAULT_VERSION} (local)"
        if bootstrap_kind == "local"
        else "given",
        "confluent_kafka": confluent_kafka.__version__,
        "librdkafka": confluent_kafka.libversion()[0],
        "boto3": boto3.__version__,
        "botocore": botocore.__version__,
        "fastavro": fastavro.__version__,
    }


def consumer_source() -> str:
    """Where the measured `consumer` package came from, and its commit when it is a checkout."""
    import consumer

    package = Path(consumer.__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(package), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "-C", str(package), "status", "--porcelain", "--", "."],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return str(package)
    return f"{package} at {commit}" + (" with uncommitted changes" if changed else "")


@dataclass(frozen=True)
class Target:
    name: str
    goal: str
    value: str
    passed: bool | None  # None: not measured in this run


def targets(scenarios: dict[str, dict[str, Any]]) -> list[Target]:
    out: list[Target] = []
    dense, naive = scenarios.get("dense"), scenarios.get("naive")
    micro, soak = scenarios.get("micro"), scenarios.get("soak")
    failed = bool(dense and "error" in dense)
    per_cpu = dense.get("events_per_consumer_cpu_s") if dense else None
    out.append(
        Target(
            "dense: events per consumer CPU-second",
            ">= 10,000",
            f"{per_cpu:,.0f}" if per_cpu else "not run",
            per_cpu >= 10_000 if per_cpu else None,
        )
    )
    ratio = None
    if dense and naive and naive.get("events_per_s") and dense.get("events_per_s"):
        ratio = dense["events_per_s"] / naive["events_per_s"]
    out.append(
        Target(
            "dense events/s vs naive events/s",
            ">= 50x",
            f"{ratio:,.1f}x" if ratio else "not run",
            ratio >= 50 if ratio else None,
        )
    )
    rate = micro.get("events_per_s") if micro else None
    out.append(
        Target(
            "decode+map events/s per core",
            ">= 60,000",
            f"{rate:,.0f}" if rate else "not run",
            rate >= 60_000 if rate else None,
        )
    )
    if soak and "rss" in soak:
        rss = soak["rss"]
        flat = rss["growth"] <= 0.10
        value = (
            f"peak {soak['peak_rss_mb']:.0f} MB over {soak['events']:,} events; "
            f"{rss['first_mb']:.0f} -> {rss['last_mb']:.0f} MB ({rss['growth']:+.1%})"
        )
        passed = soak["peak_rss_mb"] <= 200 and flat and soak["events"] >= 1_000_000
        out.append(Target("peak RSS, flat (soak)", "<= 200 MB, growth <= 10%", value, passed))
    else:
        peak = f"dense peak {dense['peak_rss_mb']:.0f} MB; " if dense and not failed else ""
        out.append(Target("peak RSS, flat (soak)", "<= 200 MB", f"{peak}use --soak", None))
    return out


def _fmt(value: Any, spec: str, scale: float = 1.0) -> str:
    if value is None:
        return "-"
    return format(value * scale, spec)


COLUMNS: tuple[tuple[str, str, str, float], ...] = (
    # (header, key, format, scale)
    ("events", "events", ",", 1),
    ("events/s", "events_per_s", ",.0f", 1),
    ("ev/call", "events_per_call", ".2f", 1),
    ("calls/s", "calls_per_s", ",.0f", 1),
    ("CPU s/1k ev", "consumer_cpu_s_per_1k_events", ".3f", 1),
    ("ev/CPU-s", "events_per_consumer_cpu_s", ",.0f", 1),
    ("peak RSS MB", "peak_rss_mb", ".0f", 1),
    ("p50 ms", "p50", ",.0f", 1),
    ("p99 ms", "p99", ",.0f", 1),
    ("consumer CPU", "consumer_cpu_pct", ".0f", 1),
    ("endpoint CPU", "endpoint_cpu_pct", ".0f", 1),
    ("broker CPU", "broker_cpu_pct", ".0f", 1),
)


def table(scenarios: dict[str, dict[str, Any]]) -> str:
    """Markdown table, one row per scenario (CPU columns in % of one core)."""
    headers = ["scenario", *(c[0] for c in COLUMNS)]
    rows: list[list[str]] = []
    for name, result in scenarios.items():
        flat = {**result, **(result.get("latency_ms") or {})}
        if "error" in result:
            rows.append([name, "failed", *("-" for _ in COLUMNS[1:])])
            continue
        if name == "micro":
            flat = {"events": result["records"], "events_per_s": result["events_per_s"]}
        row = [name]
        for _header, key, spec, scale in COLUMNS:
            text = _fmt(flat.get(key), spec, scale)
            row.append(text + ("%" if key.endswith("_pct") and text != "-" else ""))
        rows.append(row)
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        padded = [
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join(("-" * (w + 1) + (":" if i else "-")) for i, w in enumerate(widths)) + "|"
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def target_lines(found: list[Target]) -> str:
    marks = {True: "PASS", False: "MISS", None: "n/a "}
    return "\n".join(f"{marks[t.passed]}  {t.name}: {t.value} (target {t.goal})" for t in found)


# -- command line ------------------------------------------------------------------------------


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
    args.scenario_list = names
    if args.smoke:
        args.records, args.sparse_records, args.micro_records = 2_000, 300, 2_000
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
    if name == "naive":
        return bench.naive()
    if name == "sparse":
        topic = bench.write_topic("sparse", Traffic(sessions=None), bench.args.sparse_records)
        return bench.backlog("sparse", topic, "one event per session, backlog")
    if name == "live":
        return bench.live()
    if name == "soak":
        return bench.soak()
    raise BenchError(f"unknown scenario {name}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = datetime.now(UTC)
    scenarios: dict[str, dict[str, Any]] = {}
    profile: dict[str, Any] | None = None
    if "micro" in args.scenario_list:
        try:
            scenarios["micro"] = run_micro(args)
        except BenchError as error:
            scenarios["micro"] = {"scenario": "micro", "error": str(error)[-3000:]}

    kafka = None
    bootstrap_kind = "given" if args.bootstrap else "local"
    if args.bootstrap:
        bootstrap, broker_pid = args.bootstrap, find_broker_pid(args.bootstrap, None)
    else:
        from consumer.localkafka import LocalKafka

        log("starting a local Kafka broker")
        kafka = LocalKafka(partitions_default=args.partitions).start()
        bootstrap, broker_pid = kafka.bootstrap_servers, find_broker_pid("", kafka.workdir)
    with tempfile.TemporaryDirectory(prefix="personalize-bench-") as tmp:
        bench = Bench(args, bootstrap, broker_pid, Path(tmp))
        try:
            for name in args.scenario_list:
                if name == "micro":
                    continue  # measured above, before the broker starts
                try:
                    scenarios[name] = run_scenario(bench, name)
                except BenchError as error:  # report it, measure the others
                    log(f"{name} failed: {error}")
                    scenarios[name] = {"scenario": name, "error": str(error)[-3000:]}
            if args.profile:
                try:
                    profile = bench.profile()
                except BenchError as error:
                    profile = {"error": str(error)[-3000:]}
        finally:
            if args.keep_logs is not None:
                args.keep_logs.mkdir(parents=True, exist_ok=True)
                for path in Path(tmp).iterdir():
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
