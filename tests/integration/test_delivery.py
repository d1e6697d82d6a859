"""Acceptance tests of the delivery engine: `consumer run` as a real process against the session's
broker and the local PutEvents endpoint, judged only by what a user can see — what arrived, in
which order, what was dead-lettered, what was committed and how the process exited.

Records are keyed by session (one session lives in one partition), as clickstream is in practice.
"""

from __future__ import annotations

import random
import signal
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from consumer.deadletter.headers import (
    H_ERROR_CLASS,
    H_OFFSET,
    H_PARTITION,
    H_REASON,
    H_STAGE,
    H_TOPIC,
)
from consumer.testing.emulator import EmulatorServer
from consumer.testing.samples import interactions
from tests.conftest import KafkaBroker
from tests.integration.processes import Consumers, Deployment
from tests.integration.support import (
    accepted_at_least,
    arrival_order,
    arrived,
    content,
    stat_at_least,
    write_sessions,
    write_values,
)

#: How long a stopped consumer may take beyond its SHUTDOWN_TIMEOUT_S (interpreter exit, group
#: leave, a last commit) before the test calls it hung.
EXIT_MARGIN_S = 15
#: SHUTDOWN_TIMEOUT_S (default 30) plus the margin: a consumer with default settings must be gone.
STOPS_WITHIN_S = 30 + EXIT_MARGIN_S


def test_backlog_arrives_complete_in_session_order_and_in_full_calls(
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    emulator: EmulatorServer,
    events_file: Path,
    consumers: Consumers,
) -> None:
    topic, dead_letter = new_topic(partitions=8), new_topic()
    stream = write_sessions(kafka_bootstrap, topic, 8, 20_000, sessions=200)
    app = Deployment(kafka_bootstrap, topic, 8, dead_letter, emulator.url)

    consumers.run_until_caught_up(app.env(), within_s=180)

    events = arrived(emulator, events_file)
    assert {e["eventId"] for e in events} == stream.expected_ids()
    assert arrival_order(events) == stream.session_order()
    stats = emulator.stats()
    assert stats["accepted_events"] / stats["accepted_calls"] >= 8, stats
    assert app.caught_up()


def test_throttling_and_5xx_bursts_lose_nothing_and_dead_letter_nothing(
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    emulator: EmulatorServer,
    events_file: Path,
    consumers: Consumers,
) -> None:
    topic, dead_letter = new_topic(partitions=8), new_topic()
    stream = write_sessions(kafka_bootstrap, topic, 8, 20_000, sessions=200)
    app = Deployment(kafka_bootstrap, topic, 8, dead_letter, emulator.url)
    emulator.set_faults(throttle_ratio=0.3)

    consumer = consumers.start(app.env(), until_caught_up=True)
    for _ in range(3):  # bursts of 5xx, with progress in between, all under 30% throttling
        errors = emulator.stats()["errors_5xx"]
        emulator.set_faults(error_5xx_ratio=1.0)
        consumer.wait_until(
            stat_at_least(emulator, "errors_5xx", errors + 20), 60, "a burst of 5xx answers"
        )
        emulator.set_faults(error_5xx_ratio=0.0)
        consumer.wait_until(
            accepted_at_least(emulator, emulator.stats()["accepted_events"] + 1000),
            60,
            "progress between bursts while throttled",
        )
    emulator.set_faults(throttle_ratio=0.0)

    code = consumer.exit_code(within_s=120)
    assert code == 0, consumer.stderr_tail()
    assert {e["eventId"] for e in arrived(emulator, events_file)} == stream.expected_ids()
    assert app.dead_letters() == []
    assert app.caught_up()
    stats = emulator.stats()
    assert stats["throttled"] > 0 and stats["errors_5xx"] >= 60, stats


def test_three_sigkills_then_a_restart_deliver_everything_under_stable_event_ids(
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    emulator: EmulatorServer,
    events_file: Path,
    consumers: Consumers,
) -> None:
    topic, dead_letter = new_topic(partitions=8), new_topic()
    stream = write_sessions(kafka_bootstrap, topic, 8, 20_000, sessions=200)
    app = Deployment(kafka_bootstrap, topic, 8, dead_letter, emulator.url)
    emulator.set_faults(latency_ms=5)  # slow enough to be killed with calls in flight

    # A killed member holds its partitions until its session times out: keep that short.
    env = app.env(kafka_session_timeout_ms=6000)
    for threshold in sorted(random.Random(20_000).sample(range(1_000, 15_000), 3)):
        consumer = consumers.start(env)
        consumer.wait_until(
            accepted_at_least(emulator, threshold), 120, f"{threshold} events accepted"
        )
        consumer.kill()
    before_restart = {e["eventId"] for e in arrived(emulator, events_file)}
    assert len(before_restart) < len(stream.records), "finished before the last kill"
    emulator.set_faults(latency_ms=0)

    consumers.run_until_caught_up(env, within_s=180)

    events = arrived(emulator, events_file)
    assert {e["eventId"] for e in events} == stream.expected_ids()
    ids_by_content: defaultdict[tuple[object, ...], set[str]] = defaultdict(set)
    for event in events:
        ids_by_content[content(event)].add(event["eventId"])
    replayed_differently = {c: ids for c, ids in ids_by_content.items() if len(ids) > 1}
    assert replayed_differently == {}
    assert len(ids_by_content) == len(stream.records)
    assert app.caught_up()


def test_members_joining_and_leaving_the_group_lose_nothing(
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    emulator: EmulatorServer,
    events_file: Path,
    consumers: Consumers,
) -> None:
    topic, dead_letter = new_topic(partitions=8), new_topic()
    stream = write_sessions(kafka_bootstrap, topic, 8, 12_000, sessions=200)
    app = Deployment(kafka_bootstrap, topic, 8, dead_letter, emulator.url)
    env = app.env(max_calls_per_second=40)  # per process: the run lasts while members change

    staying, leaving = consumers.start(env), consumers.start(env)
    staying.wait_until(accepted_at_least(emulator, 2_000), 120, "a sixth accepted")
    joining = consumers.start(env)
    joining.wait_until(
        lambda: [n > 0 for n in app.partitions_per_member()] == [True] * 3,
        60,
        "the new member owning partitions beside the other two",
    )
    assert not app.caught_up(), "the run ended before a member left"
    leaving.send(signal.SIGTERM)
    assert leaving.exit_code(STOPS_WITHIN_S) == 0, leaving.stderr_tail()
    staying.wait_until(app.caught_up, 180, "every partition committed to its end")

    for member in (staying, joining):
        member.send(signal.SIGTERM)
    for member in (staying, joining):
        assert member.exit_code(STOPS_WITHIN_S) == 0, member.stderr_tail()
    assert {e["eventId"] for e in arrived(emulator, events_file)} == stream.expected_ids()
    assert app.committed() == app.end_offsets()


def test_a_member_draining_after_sigterm_does_not_hold_up_the_group(
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    emulator: EmulatorServer,
    events_file: Path,
    consumers: Consumers,
) -> None:
    """A rolling deploy: the old pod drains for up to SHUTDOWN_TIMEOUT_S while the new one
    joins. The new one gets its share of partitions during the drain, not after it."""
    topic, dead_letter = new_topic(partitions=4), new_topic()
    stream = write_sessions(kafka_bootstrap, topic, 4, 6_000, sessions=100)
    app = Deployment(kafka_bootstrap, topic, 4, dead_letter, emulator.url)

    old = consumers.start(app.env(max_calls_per_second=5))  # slow: its drain lasts 30 s
    old.wait_until(accepted_at_least(emulator, 200), 120, "the old pod sending")
    old.send(signal.SIGTERM)
    new = consumers.start(app.env())
    # Both still members, each with partitions: the old one served the rebalance mid-drain.
    old.wait_until(lambda: app.partitions_per_member() == [2, 2], 25, "partitions shared")
    assert old.exit_code(STOPS_WITHIN_S) == 0, old.stderr_tail()
    new.wait_until(app.caught_up, 180, "every partition committed to its end")

    new.send(signal.SIGTERM)
    assert new.exit_code(STOPS_WITHIN_S) == 0, new.stderr_tail()
    assert {e["eventId"] for e in arrived(emulator, events_file)} == stream.expected_ids()


def test_broker_restart_mid_run_loses_nothing(
    kafka_broker: KafkaBroker,
    new_topic: Callable[..., str],
    emulator: EmulatorServer,
    events_file: Path,
    consumers: Consumers,
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    topic, dead_letter = new_topic(partitions=4), new_topic()
    before = write_sessions(bootstrap, topic, 4, 8_000, sessions=100)
    app = Deployment(bootstrap, topic, 4, dead_letter, emulator.url)

    consumer = consumers.start(app.env(max_calls_per_second=40))
    consumer.wait_until(accepted_at_least(emulator, 2_000), 120, "a quarter accepted")
    kafka_broker.restart()
    after = write_sessions(bootstrap, topic, 4, 2_000, sessions=100, seed=8)
    consumer.wait_until(app.caught_up, 180, "every offset committed after the restart")

    consumer.send(signal.SIGTERM)
    assert consumer.exit_code(STOPS_WITHIN_S) == 0, consumer.stderr_tail()
    arrived_ids = {e["eventId"] for e in arrived(emulator, events_file)}
    assert arrived_ids == (before + after).expected_ids()


def test_an_event_the_service_rejects_is_dead_lettered_alone_and_its_call_mates_arrive(
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    emulator: EmulatorServer,
    events_file: Path,
    consumers: Consumers,
) -> None:
    topic, dead_letter = new_topic(partitions=1), new_topic()
    values = list(interactions(10, sessions=1))  # one session: ten events for one call
    values[4]["eventType"] = "Poison"
    stream = write_values(kafka_bootstrap, topic, 1, values)
    poison = next(r for r in stream.records if r.value["eventType"] == "Poison")
    app = Deployment(kafka_bootstrap, topic, 1, dead_letter, emulator.url)
    emulator.set_faults(reject_event_types=["Poison"])

    consumers.run_until_caught_up(app.env(batch_linger_ms=2_000), within_s=60)

    arrived_ids = {e["eventId"] for e in arrived(emulator, events_file)}
    assert arrived_ids == stream.expected_ids() - {poison.event_id}
    assert emulator.stats()["rejected_calls"] >= 1  # the service, not the consumer, said no
    [letter] = app.dead_letters()
    headers = dict(letter.headers() or [])
    assert headers[H_TOPIC] == topic.encode()
    assert (headers[H_PARTITION], headers[H_OFFSET]) == (b"0", str(poison.offset).encode())
    assert headers[H_STAGE] == b"put_events"
    assert headers[H_ERROR_CLASS] == b"InvalidInputException"
    reason = headers[H_REASON]
    assert isinstance(reason, bytes) and b"eventType" in reason
    assert poison.value["userId"].encode() not in reason
    assert poison.value["itemId"].encode() not in reason
    assert app.caught_up()


def test_sigterm_drains_in_flight_calls_exits_0_and_a_restart_delivers_the_rest(
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    emulator: EmulatorServer,
    events_file: Path,
    consumers: Consumers,
) -> None:
    topic, dead_letter = new_topic(partitions=4), new_topic()
    stream = write_sessions(kafka_bootstrap, topic, 4, 10_000, sessions=100)
    app = Deployment(kafka_bootstrap, topic, 4, dead_letter, emulator.url)
    emulator.set_faults(latency_ms=20)  # calls are in flight when the signal lands
    shutdown_timeout_s = 10

    # A small buffer: at the signal at most ~3,500 records are consumed (accepted + buffered +
    # one fetch batch), so the drain cannot send the whole topic however fast the machine is.
    consumer = consumers.start(
        app.env(
            shutdown_timeout_s=shutdown_timeout_s,
            max_calls_per_second=100,
            max_buffered_records=1_000,
        )
    )
    consumer.wait_until(accepted_at_least(emulator, 2_000), 120, "some events accepted")
    consumer.send(signal.SIGTERM)

    assert consumer.exit_code(shutdown_timeout_s + EXIT_MARGIN_S) == 0, consumer.stderr_tail()
    first_run = {e["eventId"] for e in arrived(emulator, events_file)}
    assert len(first_run) < len(stream.records), "finished before the signal"
    assert stream.ids_below(app.committed()) - first_run == set()

    emulator.set_faults(latency_ms=0)
    consumers.run_until_caught_up(app.env(), within_s=120)
    assert {e["eventId"] for e in arrived(emulator, events_file)} == stream.expected_ids()
    assert app.caught_up()
