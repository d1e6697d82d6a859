"""Shared helpers for the end-to-end tests: sample topics, the consumer, and what arrived."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from consumer.app import build_pipeline
from consumer.config import Settings, load_settings
from consumer.kafkaclient import produce as produce_one
from consumer.mapping import derived_event_id
from consumer.ops.summary import RunSummary
from consumer.pipeline import Pipeline
from consumer.testing.emulator import EmulatorServer
from consumer.testing.samples import InteractionEncoder, interactions, produce


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll a condition until it holds; fail naming what never happened."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.05)


@dataclass
class Clickstream:
    """A source topic filled with known records, and where each one went."""

    topic: str
    partitions: int
    values: list[dict[str, Any]]

    def event_id(self, index: int) -> str:
        return derived_event_id(self.topic, index % self.partitions, index // self.partitions)

    def expected_ids(self, skip: set[int] | None = None) -> set[str]:
        return {self.event_id(i) for i in range(len(self.values)) if i not in (skip or set())}


def write_clickstream(
    bootstrap: str, topic: str, partitions: int, count: int, extra: dict[int, bytes] | None = None
) -> tuple[Clickstream, list[bytes]]:
    """Produce `count` valid records round-robin (record i lands at partition i%n, offset i//n).

    `extra` replaces the record at an index with raw bytes (a bad record).
    """
    encoder = InteractionEncoder()
    values = list(interactions(count, sessions=200))
    raw = [extra[i] if extra and i in extra else encoder.encode(v) for i, v in enumerate(values)]
    produce(bootstrap, topic, raw, partitions)
    return Clickstream(topic, partitions, values), raw


def settings_for(bootstrap: str, topic: str, dead_letter: str, group: str) -> Settings:
    return load_settings(
        {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "KAFKA_GROUP_ID": group,
            "SOURCE_TOPICS": topic,
            "DEAD_LETTER_TOPIC": dead_letter,
            "PERSONALIZE_TRACKING_ID": "tracker-it",
            "AWS_REGION": "us-east-1",
        }
    )


@contextmanager
def running(settings: Settings) -> Iterator[tuple[Pipeline, threading.Event]]:
    """The consumer in a background thread, stopped and closed on exit."""
    pipeline = build_pipeline(settings)
    stop = threading.Event()
    errors: list[BaseException] = []

    def target() -> None:
        try:
            pipeline.run(stop)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target, name="pipeline", daemon=True)
    thread.start()
    try:
        yield pipeline, stop
    finally:
        stop.set()
        thread.join(60)
        pipeline.close()
    assert not errors, errors


def run_until_caught_up(settings: Settings) -> RunSummary:
    pipeline = build_pipeline(settings)
    try:
        return pipeline.run(threading.Event(), until_caught_up=True)
    finally:
        pipeline.close()


def accepted_events(events_file: Path) -> list[dict[str, Any]]:
    if not events_file.exists():
        return []
    with events_file.open() as lines:
        return [json.loads(line) for line in lines if line.strip()]


def committed(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    """The group's committed offsets (negative when nothing is committed)."""
    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        return {tp.partition: tp.offset for tp in reader.committed(tps, timeout=10)}
    finally:
        reader.close()


def end_offsets(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": "end-offsets"})
    try:
        return {
            p: reader.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in range(partitions)
        }
    finally:
        reader.close()


def read_all(bootstrap: str, topic: str, partitions: int = 1) -> list[Message]:
    ends = end_offsets(bootstrap, topic, partitions)
    reader = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "reader", "enable.auto.commit": False}
    )
    reader.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    messages: list[Message] = []
    deadline = time.monotonic() + 30
    try:
        while len(messages) < sum(ends.values()) and time.monotonic() < deadline:
            message = reader.poll(0.5)
            if message is not None and message.error() is None:
                messages.append(message)
    finally:
        reader.close()
    return messages


# --- clickstream keyed by session, the consumer as a real process, and what it left behind -----


@dataclass(frozen=True)
class Written:
    """One record as the broker stored it, and the eventId the consumer must send it with."""

    partition: int
    offset: int
    event_id: str
    value: dict[str, Any]


@dataclass
class SessionStream:
    """Records keyed by session: every session lives in one partition (session number % n)."""

    topic: str
    partitions: int
    records: list[Written]

    def __add__(self, more: SessionStream) -> SessionStream:
        assert (more.topic, more.partitions) == (self.topic, self.partitions)
        return SessionStream(self.topic, self.partitions, self.records + more.records)

    def expected_ids(self) -> set[str]:
        return {r.event_id for r in self.records}

    def session_order(self) -> dict[str, list[str]]:
        """sessionId -> its eventIds in offset order (one partition per session: well-defined)."""
        ordered: dict[str, list[str]] = {}
        for r in sorted(self.records, key=lambda r: (r.partition, r.offset)):
            ordered.setdefault(r.value["sessionId"], []).append(r.event_id)
        return ordered

    def ids_below(self, offsets: Mapping[int, int]) -> set[str]:
        """eventIds of the records below each partition's offset (a committed position)."""
        return {r.event_id for r in self.records if r.offset < offsets.get(r.partition, -1)}


def session_partition(value: Mapping[str, Any], partitions: int) -> int:
    """`session-N` goes to partition N % partitions, as a keyed producer pins a session."""
    return int(str(value["sessionId"]).rsplit("-", 1)[1]) % partitions


def write_values(
    bootstrap: str, topic: str, partitions: int, values: Sequence[dict[str, Any]]
) -> SessionStream:
    """Produce interaction values keyed by session (acks=all, idempotent), wait for every ack,
    and return where each one landed."""
    encoder = InteractionEncoder()
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 20,
        }
    )
    landed: list[Written] = []
    failures: list[str] = []

    def on_delivery(value: dict[str, Any]) -> Callable[[KafkaError | None, Message], None]:
        def report(err: KafkaError | None, msg: Message) -> None:
            if err is not None:
                failures.append(str(err))
                return
            partition, offset = msg.partition(), msg.offset()
            assert partition is not None and offset is not None
            event_id = value.get("eventId") or derived_event_id(topic, partition, offset)
            landed.append(Written(partition, offset, event_id, value))

        return report

    for value in values:
        produce_one(
            producer,
            topic,
            value=encoder.encode(value),
            key=str(value["sessionId"]).encode(),
            partition=session_partition(value, partitions),
            on_delivery=on_delivery(value),
        )
        producer.poll(0)
    unacknowledged = producer.flush(60)
    assert not failures and not unacknowledged, (failures[:3], unacknowledged)
    assert len(landed) == len(values)
    return SessionStream(topic, partitions, sorted(landed, key=lambda r: (r.partition, r.offset)))


def write_sessions(
    bootstrap: str, topic: str, partitions: int, count: int, sessions: int, seed: int = 7
) -> SessionStream:
    """`count` valid interactions over `sessions` sessions, each session in one partition."""
    return write_values(bootstrap, topic, partitions, list(interactions(count, sessions, seed)))


def arrived(emulator: EmulatorServer, events_file: Path) -> list[dict[str, Any]]:
    """Every event the endpoint accepted so far, in acceptance order (duplicates included)."""
    emulator.flush()
    return accepted_events(events_file)


def arrival_order(events: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    """sessionId -> its eventIds in the order they were first accepted."""
    ordered: dict[str, list[str]] = {}
    seen: set[str] = set()
    for event in events:
        if event["eventId"] not in seen:
            seen.add(event["eventId"])
            ordered.setdefault(event["sessionId"], []).append(event["eventId"])
    return ordered


def stat_at_least(emulator: EmulatorServer, name: str, count: int) -> Callable[[], bool]:
    """A condition for `wait_for`: the endpoint's counter `name` has reached `count`."""
    return lambda: emulator.stats()[name] >= count


def accepted_at_least(emulator: EmulatorServer, count: int) -> Callable[[], bool]:
    """A condition for `wait_for`: the endpoint has accepted `count` events (replays count)."""
    return stat_at_least(emulator, "accepted_events", count)


def content(event: Mapping[str, Any]) -> tuple[Any, ...]:
    """What an accepted event says, apart from its eventId: a replay must say it again under
    the same eventId."""
    return (event["sessionId"], event["eventType"], event.get("itemId"), event["sentAt"])


@dataclass(frozen=True)
class Deployment:
    """One consumer group reading one topic into one endpoint; `env()` is what `consumer run`
    reads, and the rest reports the group's progress as a user would check it."""

    bootstrap: str
    topic: str
    partitions: int
    dead_letter: str
    endpoint: str
    group: str = field(default_factory=lambda: f"it-delivery-{uuid.uuid4().hex[:8]}")

    def env(self, **settings: object) -> dict[str, str]:
        """The environment for `consumer run`; keyword settings are upper-cased variable names,
        e.g. `env(batch_linger_ms=2000)`."""
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        return inherited | {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "KAFKA_GROUP_ID": self.group,
            "SOURCE_TOPICS": self.topic,
            "DEAD_LETTER_TOPIC": self.dead_letter,
            "PERSONALIZE_TRACKING_ID": "tracker-it",
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL_PERSONALIZE_EVENTS": self.endpoint,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "PYTHONUNBUFFERED": "1",
            "METRICS_PORT": "0",  # several consumers share this machine
            **{name.upper(): str(value) for name, value in settings.items()},
        }

    def committed(self) -> dict[int, int]:
        return committed(self.bootstrap, self.group, self.topic, self.partitions)

    def end_offsets(self) -> dict[int, int]:
        return end_offsets(self.bootstrap, self.topic, self.partitions)

    def caught_up(self) -> bool:
        """Every partition committed to its end; False (not an error) while the broker is away."""
        try:
            return self.committed() == self.end_offsets()
        except KafkaException:
            return False

    def dead_letters(self) -> list[Message]:
        return read_all(self.bootstrap, self.dead_letter)

    def partitions_per_member(self) -> list[int]:
        """How many partitions each member of the group owns, as its coordinator sees it
        (empty while the broker cannot say)."""
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        try:
            future = admin.describe_consumer_groups([self.group], request_timeout=10)[self.group]
            members = future.result().members
        except KafkaException:
            return []
        return sorted(len(m.assignment.topic_partitions) for m in members)


class ConsumerProcess:
    """`python -m consumer run` as a child process; stdout (JSON logs) and stderr go to files, so
    a chatty run can never block on a full pipe."""

    def __init__(self, env: Mapping[str, str], logs: Path, until_caught_up: bool = False) -> None:
        command = [sys.executable, "-m", "consumer", "run"]
        if until_caught_up:
            command.append("--until-caught-up")
        self.stdout_path, self.stderr_path = logs.with_suffix(".out"), logs.with_suffix(".err")
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.popen = subprocess.Popen(command, env=dict(env), stdout=out, stderr=err)

    def send(self, sig: signal.Signals) -> None:
        self.popen.send_signal(sig)

    def exit_code(self, within_s: float) -> int:
        """Wait for the exit; fail (with its stderr) if it takes longer than `within_s`."""
        try:
            return self.popen.wait(timeout=within_s)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"consumer pid {self.popen.pid} did not exit within {within_s}s; "
                f"stderr: {self.stderr_tail()}"
            ) from None

    def wait_until(self, condition: Callable[[], bool], timeout_s: float, what: str) -> None:
        """`wait_for`, failing at once (with its stderr) if the process exits meanwhile."""

        def check() -> bool:
            code = self.popen.poll()
            if code is not None:
                raise AssertionError(
                    f"consumer exited with {code} before {what}; stderr: {self.stderr_tail()}"
                )
            return condition()

        wait_for(check, timeout_s, what)

    def kill(self) -> None:
        """SIGKILL: no draining, no commit, like a crashed pod."""
        self.popen.kill()
        self.popen.wait(30)

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stderr_tail(self) -> str:
        """The end of stderr, for assertion messages."""
        return self.stderr()[-4000:]


class Consumers:
    """Starts consumer processes for a test and kills whatever is still running at the end."""

    def __init__(self, logs_dir: Path) -> None:
        self._logs_dir = logs_dir
        self._started: list[ConsumerProcess] = []

    def start(self, env: Mapping[str, str], until_caught_up: bool = False) -> ConsumerProcess:
        logs = self._logs_dir / f"consumer-{len(self._started)}"
        process = ConsumerProcess(env, logs, until_caught_up)
        self._started.append(process)
        return process

    def run_until_caught_up(self, env: Mapping[str, str], within_s: float) -> ConsumerProcess:
        """`run --until-caught-up` to its end; fail unless it exits 0 within `within_s`."""
        process = self.start(env, until_caught_up=True)
        code = process.exit_code(within_s)
        assert code == 0, f"exit code {code}; stderr: {process.stderr_tail()}"
        return process

    def close(self) -> None:
        for process in self._started:
            if process.popen.poll() is None:
                process.kill()
