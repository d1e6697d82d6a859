"""docker-compose.yml, checked statically (no Docker engine needed): the services exist, start in
order on health, and the consumer is wired to the local broker and PutEvents emulator and runs
locked down like the Helm chart runs it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from consumer.config import Settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
SERVICES = ("kafka", "schema-registry", "personalize-emulator", "sample-producer", "consumer")
#: One-shot services: they exit when done, so others wait for completion, not health.
ONE_SHOT = {"kafka-init", "sample-producer"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())  # resolves anchors and `<<` merges
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = compose["services"]
    return result


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _command(service: dict[str, Any], key: str = "command") -> list[str]:
    value = service.get(key, [])
    return value.split() if isinstance(value, str) else [str(v) for v in value]


def _uses_project_image(service: dict[str, Any]) -> bool:
    return "build" in service


def test_expected_services(services: dict[str, dict[str, Any]]) -> None:
    assert set(SERVICES) <= set(services)


def test_kafka_runs_kraft(services: dict[str, dict[str, Any]]) -> None:
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = _environment(kafka)
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].startswith(f"{env['KAFKA_NODE_ID']}@kafka:")
    assert "CONTROLLER" in env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert "ZOOKEEPER" not in " ".join(env).upper()
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]


def test_schema_registry_on_the_broker(services: dict[str, dict[str, Any]]) -> None:
    registry = services["schema-registry"]
    assert re.match(r"(confluentinc/cp-schema-registry|apicurio/)", registry["image"])
    env = _environment(registry)
    assert "kafka:9092" in env["SCHEMA_REGISTRY_KAFKASTORE_BOOTSTRAP_SERVERS"]
    assert registry["depends_on"]["kafka"]["condition"] == "service_healthy"


@pytest.mark.parametrize("name", SERVICES)
def test_health_is_checked_or_awaited(services: dict[str, dict[str, Any]], name: str) -> None:
    """Long-running services declare a healthcheck; whatever depends on them waits for it."""
    service = services[name]
    if name in ONE_SHOT:
        assert service.get("restart", "no") == "no"
    else:
        check = service["healthcheck"]
        assert check["test"][0] in ("CMD", "CMD-SHELL"), check
        assert not check.get("disable", False)
    for dependency, condition in service.get("depends_on", {}).items():
        wanted = "service_completed_successfully" if dependency in ONE_SHOT else "service_healthy"
        assert condition["condition"] == wanted, f"{name} -> {dependency}"
        assert dependency in services


def test_depends_on_has_no_cycles(services: dict[str, dict[str, Any]]) -> None:
    order: list[str] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"cycle: {' -> '.join((*path, name))}"
        for dependency in services[name].get("depends_on", {}):
            visit(dependency, (*path, name))
        if name not in order:
            order.append(name)

    for name in services:
        visit(name, ())
    assert order.index("kafka") < order.index("consumer")


def test_consumer_has_every_required_setting(services: dict[str, dict[str, Any]]) -> None:
    env = _environment(services["consumer"])
    required = {
        name.upper() for name, field in Settings.model_fields.items() if field.is_required()
    }
    assert required, "consumer.config.Settings declares no required setting?"
    missing = {name for name in required if not env.get(name)}
    assert not missing, f"consumer lacks required settings {missing}"
    # every variable given is one the consumer (or boto3) knows: no typos
    mapping = REPO / "schemas" / env["MAPPING_FILE"].removeprefix("/app/schemas/")
    referenced = set(re.findall(r"\$\{([A-Z_]+)\}", mapping.read_text()))  # the mapping's own
    known = (
        {name.upper() for name in Settings.model_fields}
        | referenced
        | {
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "METRICS_PORT",
        }
    )
    assert set(env) <= known, set(env) - known
    assert env["DEAD_LETTER_TOPIC"] not in env["SOURCE_TOPICS"].split(",")


def test_consumer_talks_to_the_local_services(services: dict[str, dict[str, Any]]) -> None:
    consumer = services["consumer"]
    env = _environment(consumer)
    endpoint = urlparse(env["AWS_ENDPOINT_URL_PERSONALIZE_EVENTS"])
    assert endpoint.scheme == "http"
    assert endpoint.hostname == "personalize-emulator"
    emulator_command = _command(services["personalize-emulator"])
    assert emulator_command[:1] == ["emulator"]
    assert emulator_command[emulator_command.index("--port") + 1] == str(endpoint.port)
    assert emulator_command[emulator_command.index("--host") + 1] == "0.0.0.0"

    host, _, port = env["KAFKA_BOOTSTRAP_SERVERS"].partition(":")
    assert host == "kafka"
    assert (
        f"PLAINTEXT://kafka:{port}" in _environment(services["kafka"])["KAFKA_ADVERTISED_LISTENERS"]
    )

    depends = consumer["depends_on"]
    assert depends["kafka"]["condition"] == "service_healthy"
    assert depends["personalize-emulator"]["condition"] == "service_healthy"
    assert _command(consumer) == ["run"]


def test_topics_exist_before_the_consumer_starts(services: dict[str, dict[str, Any]]) -> None:
    """The consumer checks the dead-letter topic at start-up and exits 3 when it is missing."""
    env = _environment(services["consumer"])
    init = " ".join(_command(services["kafka-init"]))
    for topic in [*env["SOURCE_TOPICS"].split(","), env["DEAD_LETTER_TOPIC"]]:
        assert re.search(rf"(^|\s){re.escape(topic)}(\s|;|$)", init), topic
    assert "--if-not-exists" in init
    assert services["consumer"]["depends_on"]["kafka-init"] == {
        "condition": "service_completed_successfully"
    }


def test_consumer_health_is_its_healthz(services: dict[str, dict[str, Any]]) -> None:
    consumer = services["consumer"]
    port = _environment(consumer).get("METRICS_PORT", "9400")
    test = " ".join(consumer["healthcheck"]["test"])
    assert f"127.0.0.1:{port}/healthz" in test
    assert any(p.split(":")[-1] == port for p in consumer["ports"])


def test_consumer_drains_before_it_is_killed(services: dict[str, dict[str, Any]]) -> None:
    consumer = services["consumer"]
    shutdown = float(_environment(consumer)["SHUTDOWN_TIMEOUT_S"])
    grace = consumer["stop_grace_period"]
    match = re.fullmatch(r"(\d+)s", grace)
    assert match, grace
    assert int(match.group(1)) > shutdown


@pytest.mark.parametrize("name", ["consumer", "personalize-emulator", "sample-producer"])
def test_project_image_runs_read_only_and_non_root(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    service = services[name]
    assert _uses_project_image(service)
    assert service["read_only"] is True
    assert "/tmp" in service["tmpfs"]
    user = str(service["user"]).split(":")
    assert user[0].isdigit() and int(user[0]) != 0
    assert int(user[0]) == 10001
    assert "ALL" in service.get("cap_drop", [])


def test_sample_producer_runs_the_samples_module(services: dict[str, dict[str, Any]]) -> None:
    producer = services["sample-producer"]
    assert _command(producer, "entrypoint") == ["python", "-m", "consumer.testing.samples"]
    env = _environment(producer)
    assert (
        env["KAFKA_BOOTSTRAP_SERVERS"]
        == _environment(services["consumer"])["KAFKA_BOOTSTRAP_SERVERS"]
    )
    consumer = _environment(services["consumer"])
    assert env["SOURCE_TOPICS"] == consumer["SOURCE_TOPICS"].split(",")[0]
    assert env["ITEMS_TOPIC"] == consumer["ITEMS_TOPIC"] in consumer["SOURCE_TOPICS"].split(",")
    assert "catalog.items" in " ".join(_command(services["kafka-init"]))
    assert urlparse(env["SCHEMA_REGISTRY_URL"]).hostname == "schema-registry"
    assert env["SCHEMA_REGISTRY_URL"] == _environment(services["consumer"])["SCHEMA_REGISTRY_URL"]
    assert services["consumer"]["depends_on"]["schema-registry"]["condition"] == "service_healthy"


def _compose_config(path: Path) -> subprocess.CompletedProcess[str]:
    """`docker compose config` where the plugin exists, else the same loader (compose-go)."""
    return subprocess.run(
        ["bash", str(REPO / "scripts" / "compose-config.sh"), str(path)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_compose_config_accepts_the_file() -> None:
    """Compose itself resolves the file: the schema, the interpolation and the merges hold."""
    result = _compose_config(COMPOSE)
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)
    assert set(SERVICES) <= set(resolved["services"])
    consumer = _environment(resolved["services"]["consumer"])
    assert consumer["SCHEMA_REGISTRY_URL"] == "http://schema-registry:8081"


def test_compose_config_refuses_a_broken_file(tmp_path: Path) -> None:
    """Proof that the check above checks: compose refuses a service with an unknown key."""
    broken = yaml.safe_load(COMPOSE.read_text())
    broken["services"]["consumer"]["restart_policy_typo"] = "always"
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(broken))
    result = _compose_config(path)
    assert result.returncode != 0
    assert "restart_policy_typo" in result.stderr
