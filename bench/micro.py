"""Decode + map (+ validate) on one core, no network: `python bench/micro.py --help`.

The per-record work of the poll loop without Kafka or HTTP: the consumer's own `Transform` (as
`run` builds it by default: fastavro decode, then map and validate against the botocore model)
over dense sample traffic.
Rates are events per CPU-second of the measuring thread (`time.thread_time`), so other load on
the machine does not lower them; best of `--repeat` rounds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from common import default_transform
from workload import Traffic, encoded_records

from consumer.app import quiet_cycle_collector
from consumer.records import Failure, SourceRecord


def _best_rate(work: Callable[[], int], repeat: int) -> float:
    """Events per CPU-second of this thread, best of `repeat` rounds."""
    best = 0.0
    for _ in range(repeat):
        started = time.thread_time()
        count = work()
        spent = time.thread_time() - started
        best = max(best, count / spent if spent > 0 else 0.0)
    return best


def measure(records: int, repeat: int = 3, traffic: Traffic | None = None) -> dict[str, Any]:
    traffic = traffic or Traffic()
    values = [value for _key, value in encoded_records(traffic, records)]
    # As `consumer.source.kafka.to_record` builds them from a consumed message.
    sources = [
        SourceRecord("bench", i % 4, i // 4, b"k", v, [("source", b"bench")], 1_700_000_000_000)
        for i, v in enumerate(values)
    ]
    transform = default_transform()
    quiet_cycle_collector()  # as `personalize-consumer run` sets the collector up
    decoder, mapper = transform.decoder, transform.mapper
    decoded = [decoder.decode(r.value) for r in sources]  # also warms the validator up
    pairs = [(r, v) for r, v in zip(sources, decoded, strict=True) if not isinstance(v, Failure)]
    for record, value in pairs[:100]:
        mapper.map(record, value)
    if len(pairs) != len(sources):
        raise RuntimeError("sample records failed to decode")

    def decode_only() -> int:
        for record in sources:
            decoder.decode(record.value)
        return len(sources)

    def map_only() -> int:
        for record, value in pairs:
            mapper.map(record, value)
        return len(pairs)

    def decode_and_map() -> int:
        mapped = 0
        for record in sources:
            mapped += not isinstance(transform(record), Failure)
        if mapped != len(sources):
            raise RuntimeError("sample records failed to map")
        return mapped

    return {
        "records": records,
        "traffic": traffic.name,
        "decode_events_per_s": _best_rate(decode_only, repeat),
        "map_validate_events_per_s": _best_rate(map_only, repeat),
        "events_per_s": _best_rate(decode_and_map, repeat),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/micro.py", description=__doc__)
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the best one counts")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    result = measure(args.records, args.repeat)
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"decode {result['decode_events_per_s']:,.0f}/s, "
            f"map+validate {result['map_validate_events_per_s']:,.0f}/s, "
            f"decode+map {result['events_per_s']:,.0f} events/s per core"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
