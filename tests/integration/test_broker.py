"""The ground every delivery test stands on: the session's broker really stores, serves and
remembers a consumer group's position."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

PARTITIONS, COUNT = 3, 100


def test_messages_round_trip_through_three_partitions_and_the_group_commit_sticks(
    kafka_bootstrap: str, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(partitions=PARTITIONS)
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True})
    acked: list[tuple[int, int]] = []
    failed: list[KafkaError] = []

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            failed.append(err)
        else:
            acked.append((msg.partition() or 0, msg.offset() or 0))

    for i in range(COUNT):
        value = f"event-{i}".encode()
        producer.produce(topic, value, f"user-{i}".encode(), i % PARTITIONS, on_delivery)
    assert producer.flush(30) == 0
    assert failed == []
    expected_ends = {p: len(range(p, COUNT, PARTITIONS)) for p in range(PARTITIONS)}
    assert sorted(acked) == sorted((p, o) for p, n in expected_ends.items() for o in range(n))

    group = f"it-broker-{uuid.uuid4().hex[:8]}"
    conf = {"bootstrap.servers": kafka_bootstrap, "group.id": group}
    consumer = Consumer({**conf, "auto.offset.reset": "earliest", "enable.auto.commit": False})
    received: dict[int, list[tuple[bytes | None, bytes | None]]] = {
        p: [] for p in range(PARTITIONS)
    }
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 60
        while sum(map(len, received.values())) < COUNT:
            assert time.monotonic() < deadline, f"only {received} arrived within 60 s"
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            received[msg.partition() or 0].append((msg.key(), msg.value()))
        for p in range(PARTITIONS):  # every record, in produce order within its partition
            keys = range(p, COUNT, PARTITIONS)
            assert received[p] == [(f"user-{i}".encode(), f"event-{i}".encode()) for i in keys]

        committed = consumer.commit(asynchronous=False)
        assert committed is not None and all(tp.error is None for tp in committed)
        assert {tp.partition: tp.offset for tp in committed} == expected_ends
    finally:
        consumer.close()

    fresh = Consumer(conf)  # a new member reads the group's position back from the broker
    try:
        stored = fresh.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=30)
        assert {tp.partition: tp.offset for tp in stored} == expected_ends
        for p, end in expected_ends.items():
            assert fresh.get_watermark_offsets(TopicPartition(topic, p), timeout=30) == (0, end)
    finally:
        fresh.close()
