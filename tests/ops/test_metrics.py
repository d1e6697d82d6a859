"""Lag from librdkafka's statistics, as an operator's dashboard reads it."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram

from consumer.ops.metrics import LATENCY_BUCKETS, LoopHistogram, Metrics

LAG = "personalize_consumer_consumer_lag_records"


def stats(**partitions: dict[str, Any]) -> str:
    return json.dumps({"topics": {"clicks": {"partitions": partitions}}})


def test_lag_is_exported_for_every_assigned_partition_even_before_any_commit() -> None:
    metrics = Metrics()
    metrics.on_kafka_stats(
        stats(
            **{
                "0": {"consumer_lag": 42, "desired": True},
                # Assigned, nothing committed yet: librdkafka says -1; the lag is what is there.
                "1": {
                    "consumer_lag": -1,
                    "desired": True,
                    "committed_offset": -1001,
                    "lo_offset": 10,
                    "hi_offset": 25,
                },
                # Assigned and empty: 0, not a missing series.
                "2": {
                    "consumer_lag": -1,
                    "desired": True,
                    "committed_offset": -1001,
                    "lo_offset": 0,
                    "hi_offset": 0,
                },
                # Not assigned to this consumer: not ours to report.
                "3": {"consumer_lag": -1, "desired": False, "hi_offset": 99},
                "-1": {"consumer_lag": -1},
            }
        )
    )
    assert metrics.value(LAG, topic="clicks", partition="0") == 42
    assert metrics.value(LAG, topic="clicks", partition="1") == 15
    assert metrics.value(LAG, topic="clicks", partition="2") == 0
    assert metrics.registry.get_sample_value(LAG, {"topic": "clicks", "partition": "2"}) == 0
    assert metrics.registry.get_sample_value(LAG, {"topic": "clicks", "partition": "3"}) is None
    assert metrics.registry.get_sample_value(LAG, {"topic": "clicks", "partition": "-1"}) is None


def test_statistics_that_are_not_json_change_nothing() -> None:
    metrics = Metrics()
    metrics.on_kafka_stats("{not json")
    assert metrics.total(LAG) == 0


@settings(max_examples=50)
@given(
    st.lists(
        st.sampled_from([0.0, 0.005, 0.02, 1.0, 10.0, 11.0]) | st.floats(0, 20, allow_nan=False),
        max_size=30,
    )
)
def test_the_loop_histogram_exports_what_prometheus_clients_own_would(
    values: list[float],
) -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    lean = LoopHistogram("h", "help.", LATENCY_BUCKETS, ["operation"], registry=ours)
    reference = Histogram("h", "help.", ["operation"], buckets=LATENCY_BUCKETS, registry=theirs)
    for value in values:
        lean.labels("PutEvents").observe(value)
        reference.labels("PutEvents").observe(value)

    def samples(registry: CollectorRegistry) -> list[tuple[str, str, float]]:
        found = [
            (s.name, str(sorted(s.labels.items())), s.value)
            for m in registry.collect()
            for s in m.samples
        ]
        return sorted(s for s in found if not s[0].endswith("_created"))

    assert samples(ours) == samples(theirs)
