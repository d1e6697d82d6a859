"""Shared helpers for the end-to-end tests: sample topics, the consumer, and what arrived."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Message, TopicPartition

from consumer.app import build_pipeline
from consumer.config import Settings, load_settings
from consumer.mapping import derived_event_id
from consumer.pipeline import Pipeline, RunSummary
from consumer.samples import InteractionEncoder, interactions, produce


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
