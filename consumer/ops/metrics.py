"""Prometheus metrics, in base units and Prometheus naming.

One `Metrics` object per process (its own registry, so tests can build several). The run summary
printed at exit is read back from these counters, so there is one source of truth.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

log = logging.getLogger(__name__)

NS = "personalize_consumer"
LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.consumed = Counter(
            f"{NS}_records_consumed", "Records consumed.", ["topic"], registry=r
        )
        self.sent = Counter(f"{NS}_events_sent", "Events accepted by PutEvents.", registry=r)
        self.dead_lettered = Counter(
            f"{NS}_records_dead_lettered",
            "Records on the dead-letter topic (acknowledged), by failed stage.",
            ["stage"],
            registry=r,
        )
        self.filtered = Counter(
            f"{NS}_records_filtered", "Records deliberately skipped by the mapping.", registry=r
        )
        self.calls = Counter(
            f"{NS}_put_events_calls",
            "PutEvents attempts by outcome: accepted, invalid_input, throttled, transient, fatal.",
            ["outcome"],
            registry=r,
        )
        self.call_seconds = Histogram(
            f"{NS}_put_events_duration_seconds",
            "PutEvents attempt latency.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.events_per_call = Histogram(
            f"{NS}_events_per_call",
            "Events in each accepted PutEvents call (10 is full).",
            buckets=tuple(range(1, 11)),
            registry=r,
        )
        self.retries = Counter(f"{NS}_put_events_retries", "PutEvents retries.", registry=r)
        self.in_flight = Gauge(f"{NS}_in_flight_calls", "PutEvents calls in flight.", registry=r)
        self.in_flight_limit = Gauge(
            f"{NS}_in_flight_limit", "Adaptive limit on calls in flight.", registry=r
        )
        self.unfinished = Gauge(
            f"{NS}_unfinished_records", "Records consumed and not yet done.", registry=r
        )
        self.paused = Gauge(f"{NS}_fetch_paused", "1 while fetching is paused.", registry=r)
        self.lag = Gauge(
            f"{NS}_consumer_lag_records",
            "Records between the committed offset and the end of the partition.",
            ["topic", "partition"],
            registry=r,
        )
        self.commit_seconds = Histogram(
            f"{NS}_commit_duration_seconds",
            "Offset commit latency.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.commit_failures = Counter(f"{NS}_commit_failures", "Failed commits.", registry=r)
        self.rebalances = Counter(
            f"{NS}_rebalances", "Partition assignment changes.", ["event"], registry=r
        )
        self.brokers_up = Gauge(
            f"{NS}_kafka_brokers_up", "Brokers this consumer is connected to.", registry=r
        )

    def value(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    def total(self, name: str) -> float:
        """Sum of a counter over all its label values."""
        return sum(
            s.value for metric in self.registry.collect() for s in metric.samples if s.name == name
        )

    def on_kafka_stats(self, stats_json: str) -> None:
        """librdkafka's statistics callback: per-partition lag of this consumer."""
        try:
            stats: dict[str, Any] = json.loads(stats_json)
        except ValueError:
            return
        brokers = stats.get("brokers", {}).values()
        self.brokers_up.set(
            sum(1 for b in brokers if b.get("state") == "UP" and b.get("nodeid", -1) >= 0)
        )
        for topic, detail in stats.get("topics", {}).items():
            for partition, p in detail.get("partitions", {}).items():
                lag = p.get("consumer_lag", -1)
                if partition != "-1" and lag >= 0:
                    self.lag.labels(topic, partition).set(lag)
