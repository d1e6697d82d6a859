"""The naive way, for comparison: one PutEvents call per record, one at a time.

This is how the public Kafka Connect sink for Personalize works: take a batch from the consumer,
call PutEvents once per record (a one-event list) and wait for each answer, then commit the
batch's offsets synchronously. Same decoder and mapper (with validation) as the consumer, a
boto3 client with its defaults. Stops after `--max-records` records or `--max-seconds` seconds of
sending, whichever comes first, and prints one JSON line with what it did.

`python bench/naive_consumer.py --help`; the endpoint is AWS_ENDPOINT_URL_PERSONALIZE_EVENTS.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import boto3
from common import default_transform
from confluent_kafka import Consumer, TopicPartition

from consumer.records import TP, MappedEvent
from consumer.source.kafka import to_record


def put_one(client: Any, mapped: MappedEvent) -> None:
    params: dict[str, Any] = {
        "trackingId": mapped.session.tracking_id,
        "sessionId": mapped.session.session_id,
        "eventList": [mapped.event],
    }
    if mapped.session.user_id is not None:
        params["userId"] = mapped.session.user_id
    client.put_events(**params)


def run(args: argparse.Namespace) -> dict[str, Any]:
    transform = default_transform(args.tracking_id)
    client = boto3.session.Session().client("personalize-events", region_name=args.region)
    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            "group.id": args.group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([args.topic])
    records = calls = skipped = commits = 0
    started: float | None = None
    try:
        while records < args.max_records:
            if started is not None and time.monotonic() - started >= args.max_seconds:
                break
            batch = consumer.consume(args.batch_size, timeout=1.0)
            positions: dict[TP, int] = {}
            for message in batch:
                if message.error() is not None:
                    continue
                if started is None:
                    started = time.monotonic()
                record = to_record(message)
                outcome = transform(record)
                if not isinstance(outcome, MappedEvent):
                    skipped += 1  # the Connect sink would send it to its dead-letter queue
                else:
                    put_one(client, outcome)
                    calls += 1
                records += 1
                positions[(record.topic, record.partition)] = record.offset + 1
                if records >= args.max_records or (time.monotonic() - started >= args.max_seconds):
                    break
            if positions:
                offsets = [TopicPartition(t, p, o) for (t, p), o in positions.items()]
                consumer.commit(offsets=offsets, asynchronous=False)
                commits += 1
    finally:
        consumer.close()
    seconds = time.monotonic() - started if started is not None else 0.0
    return {
        "records": records,
        "calls": calls,
        "skipped": skipped,
        "commits": commits,
        "seconds": seconds,
        "events_per_s": calls / seconds if seconds else 0.0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/naive_consumer.py", description=__doc__)
    parser.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers")
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--tracking-id", default="bench-tracker")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--batch-size", type=int, default=500, help="records per consume call")
    parser.add_argument("--max-records", type=int, default=5_000)
    parser.add_argument("--max-seconds", type=float, default=60.0, help="bound on sending time")
    result = run(parser.parse_args(argv))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
