"""Shared helpers for the end-to-end tests: sample topics, the consumer, and what arrived."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

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
