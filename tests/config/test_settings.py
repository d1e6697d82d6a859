"""Settings: a missing or wrong setting stops start-up naming the variable, before connecting."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from consumer.config import load_settings
from consumer.errors import ConfigError

VALID = {
    "KAFKA_BOOTSTRAP_SERVERS": "broker:9092",
    "SOURCE_TOPICS": "clicks, views",
    "DEAD_LETTER_TOPIC": "clicks.dlq",
    "PERSONALIZE_TRACKING_ID": "tracker-1",
    "AWS_REGION": "eu-west-1",
}


def test_valid_settings_are_read() -> None:
    settings = load_settings(VALID)
    assert settings.source_topics == ("clicks", "views")
    assert settings.kafka_auto_offset_reset == "earliest"
    assert settings.aws_region == "eu-west-1"


def test_aws_default_region_is_accepted_in_place_of_aws_region() -> None:
    env = {k: v for k, v in VALID.items() if k != "AWS_REGION"} | {
        "AWS_DEFAULT_REGION": "us-east-2"
    }
    assert load_settings(env).aws_region == "us-east-2"


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"KAFKA_BOOTSTRAP_SERVERS": None}, "KAFKA_BOOTSTRAP_SERVERS"),
        ({"SOURCE_TOPICS": " , "}, "SOURCE_TOPICS"),
        ({"DEAD_LETTER_TOPIC": "clicks"}, "DEAD_LETTER_TOPIC"),
        ({"PERSONALIZE_TRACKING_ID": None}, "PERSONALIZE_TRACKING_ID"),
        ({"AWS_REGION": None}, "AWS_REGION"),
        ({"KAFKA_AUTO_OFFSET_RESET": "middle"}, "KAFKA_AUTO_OFFSET_RESET"),
        ({"AVRO_SCHEMA_FILE": "/no/such.avsc"}, "AVRO_SCHEMA_FILE"),
        (
            {"AWS_ENDPOINT_URL_PERSONALIZE_EVENTS": "localhost:4566"},
            "AWS_ENDPOINT_URL_PERSONALIZE_EVENTS",
        ),
    ],
)
def test_bad_setting_is_named(change: dict[str, str | None], named: str) -> None:
    env = {k: v for k, v in (VALID | change).items() if v is not None}
    with pytest.raises(ConfigError, match=named):
        load_settings(env)


def test_schema_file_that_is_not_avro_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.avsc"
    bad.write_text('{"type": "record"}')
    with pytest.raises(ConfigError, match="AVRO_SCHEMA_FILE"):
        load_settings(VALID | {"AVRO_SCHEMA_FILE": str(bad)})


def test_run_exits_2_naming_the_setting_before_connecting() -> None:
    env = {k: v for k, v in os.environ.items() if k not in VALID and k != "AWS_DEFAULT_REGION"}
    env |= {k: v for k, v in VALID.items() if k != "PERSONALIZE_TRACKING_ID"}
    done = subprocess.run(
        [sys.executable, "-m", "consumer", "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "PERSONALIZE_TRACKING_ID" in done.stderr


def test_sasl_scram_needs_username_and_password() -> None:
    env = VALID | {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512"}
    with pytest.raises(ConfigError, match="KAFKA_SASL_PASSWORD"):
        load_settings(env)
    settings = load_settings(env | {"KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "p4ss"})
    assert "p4ss" not in repr(settings)


def test_sasl_protocol_needs_a_mechanism() -> None:
    with pytest.raises(ConfigError, match="KAFKA_SASL_MECHANISM"):
        load_settings(VALID | {"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"})


def test_msk_iam_needs_sasl_ssl() -> None:
    with pytest.raises(ConfigError, match="SASL_SSL"):
        load_settings(VALID | {"KAFKA_MSK_IAM": "true"})
    assert load_settings(VALID | {"KAFKA_MSK_IAM": "true", "KAFKA_SECURITY_PROTOCOL": "SASL_SSL"})


def test_tls_files_must_exist() -> None:
    with pytest.raises(ConfigError, match="KAFKA_SSL_CA_LOCATION"):
        load_settings(VALID | {"KAFKA_SSL_CA_LOCATION": "/no/ca.pem"})


def test_other_kafka_variables_pass_through_as_librdkafka_properties() -> None:
    settings = load_settings(VALID | {"KAFKA_FETCH_MAX_BYTES": "1048576", "KAFKA_GROUP_ID": "g"})
    assert settings.kafka_properties == {"fetch.max.bytes": "1048576"}
    assert settings.kafka_group_id == "g"


def test_settings_file_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    file = tmp_path / "consumer.env"
    file.write_text("SOURCE_TOPICS=from-file\nLOG_LEVEL=debug\n")
    env = {k: v for k, v in VALID.items() if k != "SOURCE_TOPICS"} | {"SETTINGS_FILE": str(file)}
    assert load_settings(env).source_topics == ("from-file",)
    assert load_settings(env | {"LOG_LEVEL": "error"}).log_level == "ERROR"


def test_shutdown_timeout_must_fit_in_the_poll_interval() -> None:
    with pytest.raises(ConfigError, match="SHUTDOWN_TIMEOUT_S"):
        load_settings(VALID | {"SHUTDOWN_TIMEOUT_S": "200"})


def test_every_problem_is_named_at_once_cross_field_ones_included(tmp_path: Path) -> None:
    trunc = tmp_path / "trunc.avsc"
    trunc.write_text('{"type": "record", "name": "trunc", "fields": [')
    env = VALID | {
        "DEAD_LETTER_TOPIC": "clicks",  # one of the sources: a cross-field problem
        "SHUTDOWN_TIMEOUT_S": "200",  # more than half of MAX_POLL_INTERVAL_MS
        "MAX_IN_FLIGHT_CALLS": "many",  # a field of its own that is wrong
        "AVRO_SCHEMA_FILE": str(trunc),
        "KAFKA_ENABLE_AUTO_COMMIT": "true",
    }
    with pytest.raises(ConfigError) as raised:
        load_settings(env)
    problems = raised.value.problems
    assert any(p.startswith("MAX_IN_FLIGHT_CALLS: ") for p in problems)
    assert "DEAD_LETTER_TOPIC must not be one of SOURCE_TOPICS" in problems
    assert "SHUTDOWN_TIMEOUT_S must be at most half of MAX_POLL_INTERVAL_MS" in problems
    assert any("trunc.avsc: not valid JSON" in p and "line 1, column" in p for p in problems)
    assert any(
        p.startswith("KAFKA_ENABLE_AUTO_COMMIT: enable.auto.commit can't be set") for p in problems
    )
    assert not any(p.startswith("configuration") for p in problems)  # no doubled prefix


@pytest.mark.parametrize(
    "name", ["ENABLE_AUTO_OFFSET_STORE", "PARTITION_ASSIGNMENT_STRATEGY", "ACKS"]
)
def test_properties_the_consumer_fixes_are_refused_not_ignored(name: str) -> None:
    with pytest.raises(ConfigError, match=f"KAFKA_{name}: "):
        load_settings(VALID | {f"KAFKA_{name}": "x"})


def test_the_command_line_names_all_bad_settings_in_one_line_and_exits_2() -> None:
    env = (
        {k: v for k, v in os.environ.items() if k not in VALID}
        | VALID
        | {
            "DEAD_LETTER_TOPIC": "clicks",
            "MAX_IN_FLIGHT_CALLS": "0",
        }
    )
    done = subprocess.run(
        [sys.executable, "-m", "consumer", "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("personalize-consumer: configuration error: ")
    assert "MAX_IN_FLIGHT_CALLS" in line and "DEAD_LETTER_TOPIC" in line
