"""The scenarios: `Bench` writes each one's topic, runs a consumer process against a fresh
endpoint, and turns what the endpoint and the process showed into one result dict.

The endpoint serves HTTPS, as AWS does (TLS costs the consumer CPU per call, so a plain-HTTP
figure would flatter it); `dense-http` is the one scenario over plain HTTP, to show that cost.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hot as hot_measure
import hotspots
import workload
from common import HERE, BenchError, log
from endpoint import Endpoint, Monitor
from latency import latencies_ms
from processes import run_process
from summary import summarize
from workload import ProduceLog, Traffic

_TRACKING_ID = "bench-tracker"


@dataclass
class Topic:
    """A source topic written for a scenario, with what the broker acknowledged."""

    name: str
    dead_letter: str
    records: int
    produced: ProduceLog
    traffic: Traffic


@dataclass
class Bench:
    """One benchmark run against one broker: the topics it wrote (deleted by `cleanup`) and the
    dense topic, written once and shared by dense, naive and profile."""

    args: argparse.Namespace
    bootstrap: str
    broker_pid: int | None
    tmp: Path
    topics: list[str] = field(default_factory=list)
    dense: Topic | None = None
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    # -- set-up --

    def make_topic(self, stem: str) -> tuple[str, str]:
        from consumer.testing.samples import create_topics

        name = f"bench-{stem}-{self.run_id}"
        dead_letter = f"{name}.dead-letter"
        create_topics(self.bootstrap, {name: self.args.partitions, dead_letter: 1})
        self.topics += [name, dead_letter]
        return name, dead_letter

    def write_topic(self, stem: str, traffic: Traffic, records: int, track: bool = True) -> Topic:
        """A topic with the records `encoded_records(traffic, records)` makes (`traffic.written`
        of them: fewer when it leaves the hot session out)."""
        name, dead_letter = self.make_topic(stem)
        written = traffic.written(records)
        log(f"{stem}: writing {written:,} records ({traffic.name}) to {name}")
        started = time.monotonic()
        produced = workload.produce_all(
            self.bootstrap, name, workload.encoded_records(traffic, records), track
        )
        took = time.monotonic() - started
        log(f"{stem}: written in {took:.1f} s ({written / took:,.0f} records/s)")
        return Topic(name, dead_letter, written, produced, traffic)

    def dense_topic(self) -> Topic:
        if self.dense is None:
            self.dense = self.write_topic("dense", self.traffic(), self.args.records)
        return self.dense

    def traffic(self) -> Traffic:
        return Traffic(sessions=self.args.sessions, zipf_s=self.args.zipf_s)

    def hot_traffic(self, without_hot: bool = False) -> Traffic:
        return Traffic(sessions=self.args.hot_sessions, hot_share=0.2, without_hot=without_hot)

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
        if endpoint.ca_file is not None:  # boto3's own variable: the consumer must honour it
            env["AWS_CA_BUNDLE"] = str(endpoint.ca_file)
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
        tls: bool = True,
        read_events: Callable[[Path], dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Run a consumer process (`command(group)`) against a fresh endpoint (HTTPS unless not
        `tls`); measure it. `read_events` turns the events file into more results."""
        tracked = during is not None or topic.produced.track
        events_file = self.tmp / f"{name}.events.jsonl"
        endpoint = Endpoint(
            self.args.latency_ms,
            events_file if tracked else None,
            self.tmp / f"{name}.endpoint.log",
            tls_dir=self.tmp / "tls" if tls else None,
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
            latencies = latencies_ms(events_file, produced)
            if latencies.lines != stats["accepted_events"]:
                raise BenchError(
                    f"{name}: events file has {latencies.lines} lines, "
                    f"the endpoint counted {stats['accepted_events']} events"
                )
            result["repeated_event_ids"] = latencies.repeats
            result["latency_ms"] = latencies.summary()
            if read_events is not None:
                result.update(read_events(events_file))
        result["tls"] = tls
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

    def backlog(
        self, name: str, topic: Topic, description: str, tls: bool = True
    ) -> dict[str, Any]:
        over = "HTTPS" if tls else "plain HTTP"
        log(f"{name}: consuming {topic.records:,} records over {over}")
        result = self.measure(name, topic, self.product_command(), topic.records, tls=tls)
        result["description"] = f"{description}, over {over}"
        return result

    def hot(self, baseline: bool) -> dict[str, Any]:
        """One session with 20% of the records (or, for the baseline, the same other records
        without it): how long until every other session's records were accepted."""
        name = "hot-baseline" if baseline else "hot"
        traffic = self.hot_traffic(without_hot=baseline)
        drawn = self.args.hot_records
        topic = self.write_topic(name, traffic, drawn)
        others = drawn - traffic.hot_records(drawn)

        def read_events(events_file: Path) -> dict[str, Any]:
            found = hot_measure.others_accepted(events_file, workload.HOT_SESSION_ID, others)
            return {"hot": found | {"sessions": traffic.sessions, "share": traffic.hot_share}}

        log(f"{name}: consuming {topic.records:,} records ({traffic.name})")
        result = self.measure(
            name, topic, self.product_command(), topic.records, read_events=read_events
        )
        result["description"] = f"{traffic.name}, backlog, over HTTPS"
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
        result["offered_per_s"] = self.args.live_rate
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
