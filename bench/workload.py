"""The benchmark's traffic: which session each record belongs to, and writing it to a topic.

Records are the project's own sample interactions (`consumer.testing.samples`); only the session of
one is chosen here: a Zipf draw over a fixed set of sessions ("dense": many events per session,
so calls fill up to 10 events), a new session per record ("sparse": every call carries one
event), or one hot session with a fixed share of the records and the rest uniform over the
others ("hot"; `without_hot` drops the hot session's records and keeps every other record as it
was, for the baseline). Records are keyed by session id, as a real producer keeps a session on
one partition.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from confluent_kafka import KafkaError, Message, Producer

from consumer.kafkaclient import produce
from consumer.mapping import derived_event_id
from consumer.testing.samples import InteractionEncoder, interaction


@dataclass(frozen=True)
class Traffic:
    """How sessions are drawn: `sessions=None` gives every record a session of its own."""

    sessions: int | None = 2_000
    zipf_s: float = 1.0
    seed: int = 11
    hot_share: float = 0.0  # > 0: session HOT_SESSION gets this share, the rest are uniform
    without_hot: bool = False  # leave the hot session's records out (the others unchanged)

    @property
    def name(self) -> str:
        if self.sessions is None:
            return "one event per session"
        if self.hot_share:
            others = f"uniform over {self.sessions - 1:,} other sessions"
            if self.without_hot:
                return f"{others}, without the hot session's {self.hot_share:.0%}"
            return f"one session with {self.hot_share:.0%} of the records, the rest {others}"
        return f"Zipf(s={self.zipf_s:g}) over {self.sessions:,} sessions"

    def hot_records(self, count: int) -> int:
        """How many of `count` drawn records are the hot session's (exact: see session_numbers)."""
        return round(count * self.hot_share) if self.hot_share else 0

    def written(self, count: int) -> int:
        """Records `encoded_records(self, count)` yields."""
        return count - self.hot_records(count) if self.without_hot else count

    def top_session_share(self) -> float:
        """Share of all records that the busiest session gets (1/total for sparse traffic)."""
        if self.sessions is None:
            return 0.0
        if self.hot_share:
            return 0.0 if self.without_hot else self.hot_share
        weights = [rank**-self.zipf_s for rank in range(1, self.sessions + 1)]
        return float(weights[0] / sum(weights))


#: The hot session's number, and its id as `consumer.testing.samples.interaction` names it.
HOT_SESSION = 0
HOT_SESSION_ID = f"session-{HOT_SESSION}"


def session_numbers(traffic: Traffic, count: int, rng: random.Random) -> Iterator[int]:
    """The session of each of `count` records, drawn in chunks so memory stays flat."""
    if traffic.sessions is None:
        yield from range(count)
        return
    if traffic.hot_share:
        yield from _hot_session_numbers(traffic, traffic.sessions, count, rng)
        return
    weights = [rank**-traffic.zipf_s for rank in range(1, traffic.sessions + 1)]
    cumulative = list(itertools.accumulate(weights))
    population = range(traffic.sessions)
    for start in range(0, count, 10_000):
        yield from rng.choices(population, cum_weights=cumulative, k=min(10_000, count - start))


def _hot_session_numbers(
    traffic: Traffic, sessions: int, count: int, rng: random.Random
) -> Iterator[int]:
    """Exactly `hot_share` of every chunk is the hot session, at shuffled places; the rest are
    drawn uniformly from the other sessions. The hot records spread over the whole backlog."""
    for start in range(0, count, 10_000):
        size = min(10_000, count - start)
        hot = traffic.hot_records(start + size) - traffic.hot_records(start)
        chunk = [HOT_SESSION] * hot + rng.choices(range(1, sessions), k=size - hot)
        rng.shuffle(chunk)
        yield from chunk


def encoded_records(traffic: Traffic, count: int) -> Iterator[tuple[bytes, bytes]]:
    """(key, Avro value) of `count` sample interactions with sessions drawn from `traffic`
    (fewer with `without_hot`: the same draws, the hot session's records left out)."""
    rng = random.Random(traffic.seed)
    encoder = InteractionEncoder()
    now = datetime.now(UTC).replace(microsecond=0)
    for index, session in enumerate(session_numbers(traffic, count, rng)):
        # Sample sentAt goes back one second per record; keep it within the last day or so.
        # Drawn even when left out, so the random stream (and every other record) is unchanged.
        value = interaction(index % 50_000, session, now, rng)
        if traffic.hot_share and session == HOT_SESSION:
            assert value["sessionId"] == HOT_SESSION_ID
            if traffic.without_hot:
                continue
        yield value["sessionId"].encode(), encoder.encode(value)


@dataclass
class ProduceLog:
    """What the broker acknowledged: produce time (the record's CreateTime, epoch ms) by the
    eventId the consumer derives for it, so the endpoint's events file can be matched back."""

    topic: str
    track: bool = True
    acknowledged: int = 0
    failures: list[str] = field(default_factory=list)
    produced_ms: dict[str, int] = field(default_factory=dict)

    def on_delivery(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self.failures.append(str(error))
            return
        self.acknowledged += 1
        if self.track:
            partition, offset = message.partition(), message.offset()
            assert partition is not None and offset is not None
            _kind, created_ms = message.timestamp()
            self.produced_ms[derived_event_id(self.topic, partition, offset)] = created_ms


def producer(bootstrap: str, linger_ms: int = 20) -> Producer:
    return Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "linger.ms": linger_ms,
            "batch.num.messages": 10_000,
            "queue.buffering.max.messages": 200_000,
        }
    )


def produce_all(
    bootstrap: str, topic: str, records: Iterable[tuple[bytes, bytes]], track: bool = True
) -> ProduceLog:
    """Write as fast as the broker takes them and wait for every acknowledgement."""
    log = ProduceLog(topic, track)
    out = producer(bootstrap)
    for key, value in records:
        _produce(out, topic, key, value, log)
    _flush(out, log)
    return log


def produce_paced(
    bootstrap: str, topic: str, records: list[tuple[bytes, bytes]], rate: float
) -> ProduceLog:
    """Write `records` at `rate` records/s (in 10 ms steps), as live traffic arrives."""
    log = ProduceLog(topic)
    # librdkafka's default linger (5 ms), as a clickstream collector's producer would have it.
    # With 1 ms the broker of this 2-core machine took 250 ms (median) and 1.0 s (p99) to
    # acknowledge 2,000 records/s, and a plain consumer saw them no sooner: the bench measured
    # the broker, not the consumer. With 5 ms: 9 and 635 ms; 10 ms: 14 and 112 ms
    # (`python bench/kafka_path.py --linger-ms N`). CreateTime is taken when `produce` is
    # called, so the linger itself counts against the consumer's latency.
    out = producer(bootstrap, linger_ms=5)
    started = time.monotonic()
    for index, (key, value) in enumerate(records):
        due = started + index / rate
        if (delay := due - time.monotonic()) > 0.01:
            out.poll(delay)  # serves delivery reports while waiting
        _produce(out, topic, key, value, log)
    _flush(out, log)
    return log


def _produce(out: Producer, topic: str, key: bytes, value: bytes, log: ProduceLog) -> None:
    produce(out, topic, value=value, key=key, on_delivery=log.on_delivery)
    out.poll(0)


def _flush(out: Producer, log: ProduceLog) -> None:
    remaining = out.flush(120)
    if log.failures or remaining:
        raise RuntimeError(f"produce failed: {log.failures[:3]} ({remaining} unacknowledged)")
