"""What an operator sees: metrics, health probes and a clean SIGTERM, against the real broker."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable

from consumer.testing.emulator import EmulatorServer
from tests.integration.support import committed, end_offsets, wait_for, write_clickstream


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


def metric(text: str, name: str) -> float:
    """Sum of a metric's samples in the Prometheus text format."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name + "{") or line.startswith(name + " ")
    )


def lag_of(text: str, topic: str) -> dict[str, float]:
    """The lag gauge per partition of one topic."""
    name = "personalize_consumer_consumer_lag_records"
    pattern = rf'^{name}{{partition="(\d+)",topic="{topic}"}} (\S+)$'
    return {p: float(v) for p, v in re.findall(pattern, text, flags=re.MULTILINE)}


def test_metrics_and_probes_report_a_working_consumer_and_sigterm_drains(
    kafka_bootstrap: str, new_topic: Callable[..., str], emulator: EmulatorServer
) -> None:
    topic, dead_letter = new_topic(partitions=3), new_topic()
    write_clickstream(kafka_bootstrap, topic, 2, 600)  # partition 2 stays empty
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = os.environ | {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KAFKA_GROUP_ID": "g-ops",
        "SOURCE_TOPICS": topic,
        "DEAD_LETTER_TOPIC": dead_letter,
        "PERSONALIZE_TRACKING_ID": "tracker-it",
        "AWS_REGION": "us-east-1",
        "METRICS_PORT": str(port),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "consumer", "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: get(base + "/healthz")[0] == 200, 60, "the liveness probe")
        wait_for(lambda: get(base + "/readyz")[0] == 200, 60, "the readiness probe")
        ends = end_offsets(kafka_bootstrap, topic, 2)
        wait_for(lambda: committed(kafka_bootstrap, "g-ops", topic, 2) == ends, 60, "commits")

        def scraped() -> str:
            return get(base + "/metrics")[1]

        wait_for(
            lambda: metric(scraped(), "personalize_consumer_events_sent_total") == 600,
            30,
            "metrics",
        )
        text = scraped()
        assert metric(text, "personalize_consumer_records_consumed_total") == 600
        assert metric(text, "personalize_consumer_put_events_calls_total") >= 60
        assert metric(text, "personalize_consumer_events_per_call_count") >= 60
        wait_for(lambda: lag_of(scraped(), topic) == {"0": 0.0, "1": 0.0, "2": 0.0}, 30, "lag of 0")
        assert metric(text, "personalize_consumer_rebalances_total") >= 1
        assert get(base + "/nope")[0] == 404
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err[-2000:]
    assert "sent=600" in out
    for line in out.splitlines():  # JSON log lines never carry user data
        assert "user-" not in line and "item-" not in line
