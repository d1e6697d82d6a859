"""The poll loop, driven with in-memory fakes of the source, the sender and the dead-letter
producer: what is committed, when, and what is never committed. No broker, no HTTP."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consumer import DEFAULT_MAPPING_FILE, DEFAULT_SCHEMA_FILE
from consumer.decode import SchemalessDecoder, load_schema_file
from consumer.decode.registry import RegistryUnavailable
from consumer.errors import AwsRefused, DeadLetterRefused, RegistryAccessDenied
from consumer.mapping import derived_event_id, load_mapping
from consumer.ops.health import Health
from consumer.ops.metrics import Metrics
from consumer.pipeline import Pipeline, Tuning
from consumer.records import TP, Failure, Stage
from consumer.source.budget import Budget
from consumer.testing.samples import InteractionEncoder, interactions
from consumer.transform import Transform
from tests.fakes import FakeDeadLetter, FakeSender, FakeSource, event_ids

P0: TP = ("clicks", 0)
P1: TP = ("clicks", 1)
ENCODER = InteractionEncoder()
SCHEMA = load_schema_file(DEFAULT_SCHEMA_FILE)
TUNING = Tuning(linger_s=0.0, commit_interval_s=0.0, shutdown_timeout_s=5.0)


def values(count: int, sessions: int = 50, seed: int = 7) -> list[bytes]:
    return [ENCODER.encode(v) for v in interactions(count, sessions, seed)]


class FlakyDecoder:
    """The real decoder, but values in `down` can't be decoded yet (the registry is down)."""

    def __init__(self, down: set[bytes], error: Exception | None = None) -> None:
        self._real = SchemalessDecoder(SCHEMA)
        self.down = down
        self.error = error or RegistryUnavailable("registry down", 7)

    def decode(self, value: bytes | None) -> dict[str, Any] | Failure:
        if value in self.down:
            raise self.error
        return self._real.decode(value)

    def close(self) -> None:
        return None


def pipeline(
    source: FakeSource,
    sender: FakeSender | None = None,
    dead_letter: FakeDeadLetter | None = None,
    decoder: Any = None,
) -> Pipeline:
    mapper = load_mapping(DEFAULT_MAPPING_FILE, SCHEMA, {"PERSONALIZE_TRACKING_ID": "t"})
    return Pipeline(
        source=source,
        transform=Transform(decoder or SchemalessDecoder(SCHEMA), mapper),
        sender=sender or FakeSender(),
        dead_letter=dead_letter or FakeDeadLetter(),
        tuning=TUNING,
        metrics=Metrics(),
        health=Health(stall_after_s=60),
    )


def run_to_end(p: Pipeline) -> None:
    p.run(threading.Event(), until_caught_up=True)


def test_every_record_is_sent_once_and_committed_to_the_end() -> None:
    source = FakeSource({P0: values(30), P1: values(25, seed=8)})
    sender = FakeSender()
    p = pipeline(source, sender)
    source.assign(P0, P1)
    run_to_end(p)
    expected = {derived_event_id(t, n, o) for (t, n), v in [(P0, 30), (P1, 25)] for o in range(v)}
    assert sorted(event_ids(sender.submitted)) == sorted(expected)
    assert (source.committed(P0), source.committed(P1)) == (30, 25)
    assert p.summary.sent_events == 55


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), sessions=st.integers(1, 20), lifo=st.booleans())
def test_out_of_order_completions_never_commit_past_an_unfinished_record(
    seed: int, sessions: int, lifo: bool
) -> None:
    source = FakeSource({P0: values(40, sessions, seed)}, batch_size=7)
    sender = FakeSender(auto=None, limit=3)
    p = pipeline(source, sender)
    source.assign(P0)
    done: set[int] = set()
    stop = threading.Event()

    def finish_some(turn: int) -> None:
        """Inside each fetch: finish in-flight calls newest first (or oldest), one at a time."""
        in_flight = list(sender._in_flight)
        if in_flight:
            call = in_flight[-1] if lifo else in_flight[0]
            sender.finish(call)
            done.update(m.record.offset for m in call.events)
        # every commit so far stopped at or before the first record not yet accepted
        first_unfinished = min(set(range(40)) - done, default=40)
        assert source.committed(P0) <= first_unfinished
        if source.committed(P0) == 40:
            stop.set()

    source.on_consume = finish_some
    p.run(stop)
    assert source.committed(P0) == 40
    assert sorted(m.record.offset for c in sender.submitted for m in c.events) == list(range(40))


def test_a_dead_letter_is_done_only_when_acknowledged() -> None:
    vals = values(10)
    vals[4] = b"\x02\xff not avro"
    source = FakeSource({P0: vals})
    dead_letter = FakeDeadLetter(auto_ack=False)
    p = pipeline(source, dead_letter=dead_letter)
    source.assign(P0)
    stop = threading.Event()

    def ack_later(turn: int) -> None:
        if turn < 5:
            assert source.committed(P0) <= 4  # record 4 is not done until its copy is safe
        elif turn == 5:
            dead_letter.ack()
        elif source.committed(P0) == 10:
            stop.set()

    source.on_consume = ack_later
    p.run(stop)
    assert [item.record.offset for item in dead_letter.parked] == [4]
    assert dead_letter.parked[0].failure.stage is Stage.DECODE
    assert source.committed(P0) == 10


def test_a_held_partition_resumes_at_the_held_record_and_loses_nothing() -> None:
    vals = values(12)
    decoder = FlakyDecoder(down={vals[5]})
    source = FakeSource({P0: vals, P1: values(6, seed=9)})
    sender = FakeSender()
    p = pipeline(source, sender, decoder=decoder)
    source.assign(P0, P1)
    stop = threading.Event()

    def registry_back(turn: int) -> None:
        if source.holds and decoder.down:
            assert source.committed(P0) <= 5  # nothing at or past the held record
            assert source.committed(P1) <= 6  # the other partition goes on meanwhile
            decoder.down.clear()  # the registry is back
        if source.committed(P0) == 12 and source.committed(P1) == 6:
            stop.set()

    source.on_consume = registry_back
    p.run(stop)
    assert source.holds[0] == (P0, 5)
    offsets = [
        m.record.offset for c in sender.submitted for m in c.events if m.record.partition == 0
    ]
    assert sorted(offsets) == list(range(12))  # each sent once: nothing skipped, nothing twice
    assert not p.summary.dead_lettered  # held back, never dead-lettered


@pytest.mark.parametrize(
    ("fatal", "unfinished"),
    [
        (AwsRefused("PutEvents refused with AccessDeniedException"), 0),
        (DeadLetterRefused("cannot write to DEAD_LETTER_TOPIC"), 12),
        (RegistryAccessDenied("the Schema Registry refused our credentials"), 15),
    ],
    ids=["aws", "dead-letter", "registry"],
)
def test_a_fatal_error_drains_commits_only_what_is_done_and_raises(
    fatal: Exception, unfinished: int
) -> None:
    """`unfinished`: the first record the failure leaves undone."""
    vals = values(30)
    vals[3] = vals[12] = b"\x02\xff not avro"  # dead-letter candidates, before and after
    sender = FakeSender(auto=None)
    dead_letter = FakeDeadLetter()
    decoder = FlakyDecoder(down=set())
    source = FakeSource({P0: vals}, batch_size=10)
    p = pipeline(source, sender, dead_letter, decoder)
    source.assign(P0)

    def fail(turn: int) -> None:
        if turn == 2:  # the first batch's calls are in flight; now the second batch fails
            if isinstance(fatal, AwsRefused):
                sender.fatal = fatal
            elif isinstance(fatal, DeadLetterRefused):
                dead_letter.refuse = fatal
            else:
                decoder.down.add(vals[15])
                decoder.error = fatal
            sender.auto = "fifo"  # from now on calls come back at once, during the drain too
        for call in list(sender._in_flight):
            sender.finish(call)  # accepted, or refused once `sender.fatal` is set

    source.on_consume = fail
    with pytest.raises(type(fatal)):
        p.run(threading.Event())
    p.close()
    p.close()  # idempotent, and safe after the failure
    assert source.closed
    sent = [c for c in sender.submitted if c not in sender.cancelled]
    accepted = {m.record.offset for c in sent for m in c.events} if sender.fatal is None else set()
    done = accepted | {item.record.offset for item in dead_letter.parked}
    committed = source.committed(P0)
    assert all(offset in done for offset in range(committed))  # only done records below it
    assert unfinished not in done and committed <= unfinished


def test_a_revoke_waits_for_its_calls_and_late_results_are_dropped() -> None:
    source = FakeSource({P0: values(10, sessions=10), P1: values(10, sessions=10, seed=3)})
    sender = FakeSender(auto=None)
    p = pipeline(source, sender)
    source.assign(P0, P1)
    stop = threading.Event()

    def revoke_then_reassign(turn: int) -> None:
        if turn == 2:
            # every call is in flight; the revoke waits (bounded) for P0's, then cancels them
            p._tuning = Tuning(linger_s=0.0, commit_interval_s=0.0, shutdown_timeout_s=0.05)
            source.revoke(P0)
            assert source.committed(P0) == 0  # nothing of P0 was done
            source.assign(P0)  # P0 comes back: a new epoch, fetched again from 0
        elif turn > 2:
            for call in list(sender._in_flight):
                sender.finish(call)
            if source.committed(P0) == 10 and source.committed(P1) == 10:
                stop.set()

    source.on_consume = revoke_then_reassign
    p.run(stop)
    cancelled = {
        m.record.offset for c in sender.cancelled for m in c.events if m.record.partition == 0
    }
    assert cancelled == set(range(10))
    # the cancelled calls' events were not sent again under the old epoch: each P0 offset went
    # out once before the revoke and once after, never more
    sent_p0 = [
        m.record.offset for c in sender.submitted for m in c.events if m.record.partition == 0
    ]
    assert sorted(sent_p0) == sorted(list(range(10)) * 2)


def test_a_rebalance_while_draining_is_served_before_the_drain_ends() -> None:
    """A rolling deploy: this member drains after SIGTERM while a new one joins. The group's
    revoke is served during the drain, with what is done committed; the group does not wait
    for the drain."""
    of_p1 = [ENCODER.encode({**v, "sessionId": f"p1-{v['sessionId']}"}) for v in interactions(10)]
    source = FakeSource({P0: values(10), P1: of_p1})  # no session in both: a call is of one
    sender = FakeSender(auto=None)
    p = pipeline(source, sender)
    source.assign(P0, P1)
    stop = threading.Event()
    still_out_at_revoke: list[int] = []

    def of(partition: int) -> list[Any]:
        return [c for c in sender._in_flight if c.events[0].record.partition == partition]

    def rolling_deploy(turn: int) -> None:
        if turn == 2:
            stop.set()  # SIGTERM, with every call in flight
        elif turn == 3:  # draining: P1's calls come back
            for call in of(1):
                sender.finish(call)
        elif turn == 4:  # the new member's rebalance takes P1; P0's calls are still out
            still_out_at_revoke.append(len(of(0)))
            source.revoke(P1)
        elif turn == 5:
            for call in of(0):
                sender.finish(call)

    source.on_consume = rolling_deploy
    p.run(stop)
    p0_calls = [c for c in sender.submitted if c.events[0].record.partition == 0]
    assert still_out_at_revoke == [len(p0_calls)]  # every one of P0's calls was still out
    assert source.committed(P1) == 10 and source.committed(P0) == 10
    assert sender.cancelled == []


def test_backpressure_pauses_fetching_and_the_loop_keeps_turning() -> None:
    source = FakeSource({P0: values(50)}, batch_size=10)
    source.budget = Budget(10)
    sender = FakeSender(auto=None)
    p = pipeline(source, sender)
    source.assign(P0)
    stop = threading.Event()
    paused_turns = 0

    def release_late(turn: int) -> None:
        nonlocal paused_turns
        if source.paused:
            paused_turns += 1
            assert p.metrics.value("personalize_consumer_unfinished_records") <= 20
        if turn % 5 == 0:
            for call in list(sender._in_flight):
                sender.finish(call)
        if source.committed(P0) == 50:
            stop.set()

    source.on_consume = release_late
    p.run(stop)
    assert paused_turns > 0
    assert source.committed(P0) == 50


def test_a_very_busy_session_does_not_stall_the_others_once_the_buffer_fills() -> None:
    hot = [ENCODER.encode(v | {"sessionId": "hot"}) for v in interactions(400, 1, seed=4)]
    calm = values(100, sessions=40, seed=5)
    source = FakeSource({P0: hot, P1: calm}, batch_size=20)
    source.budget = Budget(200)  # the hot session alone would keep it full
    sender = FakeSender(auto=None)
    p = pipeline(source, sender)
    source.assign(P0, P1)
    stop = threading.Event()
    calm_done_at: list[int] = []
    full_turns = 0

    def one_round_trip_per_turn(turn: int) -> None:
        nonlocal full_turns
        full_turns += source.paused
        for call in list(sender._in_flight):
            sender.finish(call)
        if source.committed(P1) == 100 and not calm_done_at:
            calm_done_at.append(source.committed(P0))
        if source.committed(P0) == 400 and source.committed(P1) == 100:
            stop.set()

    source.on_consume = one_round_trip_per_turn
    p.run(stop)
    assert full_turns > 0  # the buffer did fill up
    assert calm_done_at and calm_done_at[0] < 300  # the others finished while it still drained
