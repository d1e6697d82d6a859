"""How long Kafka alone takes, produce → consumed, with no consumer of ours: `python
bench/kafka_path.py --help`.

The `live` scenario's latency starts at each record's CreateTime, so it includes the producer's
linger, the broker's acknowledgement and the fetch. This measures those alone, the way `live`
produces (`workload.produce_paced`'s pacing, with `--linger-ms`) against a local broker warmed up
as the full run warms it (a 200,000-record backlog first), with a plain confluent consumer that
only notes when each record arrived. Prints the delivery-report and consume latency percentiles.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time

from common import log
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic
from workload import Traffic, encoded_records, produce_all, producer

from consumer.testing.localkafka import LocalKafka


def _percentiles(name: str, values: list[float]) -> str:
    values.sort()
    pick = lambda q: values[min(len(values) - 1, int(len(values) * q))]  # noqa: E731
    return f"{name}: p50 {pick(0.5):,.0f} ms, p99 {pick(0.99):,.0f} ms, max {values[-1]:,.0f} ms"


def measure(bootstrap: str, rate: float, seconds: float, linger_ms: int) -> list[str]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for topic in ("kafka-path-warm", "kafka-path"):
        admin.create_topics([NewTopic(topic, 4, 1)])[topic].result()
    log("warming the broker up: 200,000 records")
    produce_all(bootstrap, "kafka-path-warm", encoded_records(Traffic(), 200_000), track=False)
    records = list(encoded_records(Traffic(), int(rate * seconds)))
    reader = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "kafka-path",
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",  # as the consumer reads
        }
    )
    reader.subscribe(["kafka-path"])
    while not reader.assignment():
        reader.poll(0.1)
    delivered: list[float] = []
    consumed: list[float] = []

    def write() -> None:
        out = producer(bootstrap, linger_ms=linger_ms)

        def on_delivery(_error: object, message: object) -> None:
            delivered.append(time.time() * 1000 - message.timestamp()[1])  # type: ignore[attr-defined]

        started = time.monotonic()
        for index, (key, value) in enumerate(records):
            due = started + index / rate
            if (delay := due - time.monotonic()) > 0.01:
                out.poll(delay)
            out.produce("kafka-path", value=value, key=key, on_delivery=on_delivery)
            out.poll(0)
        out.flush(60)

    log(f"producing {len(records):,} records at {rate:,.0f}/s, linger {linger_ms} ms")
    threading.Thread(target=write, daemon=True).start()
    deadline = time.monotonic() + seconds + 60
    while len(consumed) < len(records) and time.monotonic() < deadline:
        for message in reader.consume(500, 0.02):
            consumed.append(time.time() * 1000 - message.timestamp()[1])
    reader.close()
    return [_percentiles("acknowledged", delivered), _percentiles("consumed", consumed)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=2000.0, help="records/s, as live")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--linger-ms", type=int, default=5)
    parser.add_argument("--bootstrap", help="an existing broker instead of a local one")
    args = parser.parse_args(argv)
    if args.bootstrap:
        lines = measure(args.bootstrap, args.rate, args.seconds, args.linger_ms)
    else:
        kafka = LocalKafka(partitions_default=4).start()
        try:
            lines = measure(kafka.bootstrap_servers, args.rate, args.seconds, args.linger_ms)
        finally:
            kafka.stop()
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
