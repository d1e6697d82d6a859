"""docker-compose.yml's path, rehearsed without Docker: the sample producer and the consumer run
their compose commands with their compose environment, against a real broker, a Schema Registry
over HTTP and the PutEvents endpoint. Only the addresses change (and the topics, made unique)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from consumer import SCHEMAS_DIR
from consumer.deadletter.headers import H_REASON, H_STAGE
from consumer.testing.emulator import EmulatorServer
from tests.integration.support import accepted_events, read_all
from tests.registry_server import RegistryServer

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"
SAMPLES = 500


def service_env(service: dict[str, Any], addresses: dict[str, str]) -> dict[str, str]:
    """The service's compose environment with compose hostnames replaced by local addresses."""
    env = {str(k): str(v) for k, v in service["environment"].items()}
    for name, value in env.items():
        for compose_address, local in addresses.items():
            value = value.replace(compose_address, local)
        env[name] = value
    return env


def test_the_compose_producer_and_consumer_take_the_schema_registry_path(
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    emulator: EmulatorServer,
    events_file: Path,
) -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    producer, consumer = services["sample-producer"], services["consumer"]
    topic, dead_letter = new_topic(partitions=3), new_topic(partitions=1)  # as kafka-init would
    items = new_topic(partitions=2)
    with RegistryServer() as registry:
        addresses = {
            "kafka:9092": kafka_bootstrap,
            "http://schema-registry:8081": registry.url,
            "http://personalize-emulator:4566": emulator.url,
            "/app/schemas": str(SCHEMAS_DIR),  # where the image has them
        }
        renamed = {"DEAD_LETTER_TOPIC": dead_letter, "METRICS_PORT": "0", "ITEMS_TOPIC": items}
        base = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}

        produced = subprocess.run(
            [sys.executable, *producer["entrypoint"][1:]],
            env=base
            | service_env(producer, addresses)
            | renamed
            | {"SAMPLE_RECORDS": "500", "SOURCE_TOPICS": topic},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert produced.returncode == 0, produced.stderr[-2000:]
        assert "Confluent wire format" in produced.stdout
        registered = [r for r in registry.requests if r.method == "POST"]
        assert [r.path for r in registered] == [
            f"/subjects/{topic}-value/versions",
            f"/subjects/{items}-value/versions",
        ]

        ran = subprocess.run(
            [sys.executable, "-m", "consumer", *consumer["command"], "--until-caught-up"],
            env=base
            | service_env(consumer, addresses)
            | renamed
            | {"SOURCE_TOPICS": f"{topic},{items}"},
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert ran.returncode == 0, (ran.stdout + ran.stderr)[-2000:]
        assert "dead_lettered=4" in ran.stdout

    emulator.flush()
    arrived = accepted_events(events_file)
    assert len([e for e in arrived if "operation" not in e]) == SAMPLES
    skus = [e["itemId"] for e in arrived if e.get("operation") == "PutItems"]
    assert set(skus) == {f"item-{i}" for i in range(40)}  # every sku of the sample catalog
    stages = sorted(
        dict(m.headers() or [])[H_STAGE].decode() for m in read_all(kafka_bootstrap, dead_letter)
    )
    assert stages == ["decode", "decode", "validate", "validate"]
    reasons = [dict(m.headers() or [])[H_REASON] for m in read_all(kafka_bootstrap, dead_letter)]
    assert any(b"schema id 1" in r for r in reasons)  # framed: read with the registry's schema
