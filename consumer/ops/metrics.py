"""Prometheus metrics, in base units and Prometheus naming.

One `Metrics` object per process (its own registry, so tests can build several). The run summary
printed at exit is read back from these counters, so there is one source of truth.
"""

from __future__ import annotations

import json
import logging
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

log = logging.getLogger(__name__)

NS = "personalize_consumer"
LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


@dataclass(frozen=True, slots=True)
class OperationMetrics:
    """One operation's children of the labelled metrics a call updates."""

    accepted: Any
    events_per_call: Any
    sent: Any
    retries: Any


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self._operations: dict[str, OperationMetrics] = {}
        r = self.registry
        self.consumed = Counter(
            f"{NS}_records_consumed", "Records consumed.", ["topic"], registry=r
        )
        self.sent = Counter(
            f"{NS}_events_sent",
            "Entries accepted (events, items, users, actions, action interactions).",
            ["operation"],
            registry=r,
        )
        self.dead_lettered = Counter(
            f"{NS}_records_dead_lettered",
            "Records on the dead-letter topic (acknowledged), by failed stage.",
            ["stage"],
            registry=r,
        )
        self.filtered = Counter(
            f"{NS}_records_filtered", "Records deliberately skipped by the mapping.", registry=r
        )
        self.skipped = Counter(
            f"{NS}_records_skipped",
            "Catalog records done without a call: tombstone (no delete in the API), superseded "
            "(a later record of the same call updates the same id).",
            ["reason"],
            registry=r,
        )
        self.calls = Counter(
            f"{NS}_put_events_calls",
            "Calls by operation and outcome: accepted, invalid_input, throttled, transient, fatal.",
            ["outcome", "operation"],
            registry=r,
        )
        self.call_seconds = LoopHistogram(
            f"{NS}_put_events_duration_seconds",
            "PutEvents attempt latency.",
            LATENCY_BUCKETS,
            registry=r,
        ).labels()
        self.events_per_call = LoopHistogram(
            f"{NS}_events_per_call",
            "Entries in each accepted call (10 is full), per operation.",
            tuple(range(1, 11)),
            ["operation"],
            registry=r,
        )
        self.retries = Counter(
            f"{NS}_put_events_retries", "Call retries, per operation.", ["operation"], registry=r
        )
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

    def operation(self, name: str) -> OperationMetrics:
        """The per-operation children, looked up once: `labels()` takes a lock and builds a key
        on every call, 1.9% of the consumer's CPU in the dense profile when done per call."""
        found = self._operations.get(name)
        if found is None:
            found = self._operations[name] = OperationMetrics(
                accepted=self.calls.labels("accepted", name),
                events_per_call=self.events_per_call.labels(name),
                sent=self.sent.labels(name),
                retries=self.retries.labels(name),
            )
        return found

    def value(self, name: str, **labels: str) -> float:
        """A sample's value, summed over the labels not given (operations, say)."""
        return sum(
            s.value
            for metric in self.registry.collect()
            for s in metric.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        )

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
                if partition != "-1" and (lag := _lag(p)) is not None:
                    self.lag.labels(topic, partition).set(lag)


class _Series:
    """One label set's counts: `counts[i]` observations in bucket i (the last one: +Inf)."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1  # the first bound >= value: `le`
        self.sum += value


class LoopHistogram:
    """A histogram only the poll loop observes, kept as plain numbers and read at a scrape.

    prometheus_client's `Histogram.observe` takes a lock per value it updates and checks its
    labels each time; two per call were 4.3% of the poll loop's CPU in the sparse loop benchmark
    (one event a call). One writer needs no lock; a scrape copies the counts under the GIL.
    """

    def __init__(
        self,
        name: str,
        documentation: str,
        buckets: Sequence[float],
        labelnames: Sequence[str] = (),
        registry: CollectorRegistry | None = None,
    ) -> None:
        self._name, self._documentation = name, documentation
        self._labelnames = list(labelnames)
        self._bounds = tuple(float(b) for b in buckets)
        self._series: dict[tuple[str, ...], _Series] = {}
        if registry is not None:
            registry.register(self)  # a collector: `describe` and `collect`

    def labels(self, *values: str) -> _Series:
        found = self._series.get(values)
        if found is None:
            found = self._series[values] = _Series(self._bounds)
        return found

    def describe(self) -> Iterable[Metric]:
        return [HistogramMetricFamily(self._name, self._documentation, labels=self._labelnames)]

    def collect(self) -> Iterable[Metric]:
        family = HistogramMetricFamily(self._name, self._documentation, labels=self._labelnames)
        for values, series in list(self._series.items()):
            counts, total = list(series.counts), series.sum
            cumulative, buckets = 0, []
            bounds = [*map(floatToGoString, self._bounds), "+Inf"]
            for bound, count in zip(bounds, counts, strict=True):
                cumulative += count
                buckets.append((bound, cumulative))
            family.add_metric(list(values), buckets, total)
        return [family]


def _lag(partition: dict[str, Any]) -> int | None:
    """Records between the committed offset and the end; librdkafka says -1 (unknown) while
    nothing is committed, which for an assigned partition is everything there: 0 when empty."""
    lag = int(partition.get("consumer_lag", -1))
    if lag >= 0:
        return lag
    high, low = int(partition.get("hi_offset", -1)), int(partition.get("lo_offset", -1))
    if partition.get("desired") and high >= 0 and partition.get("committed_offset", -1) < 0:
        return max(0, high - max(low, 0))
    return None
