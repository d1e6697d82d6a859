"""librdkafka configuration: at-least-once knobs that users can't turn off, security as set."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from confluent_kafka import KafkaError

from consumer.config import load_settings
from consumer.kafkaclient import KafkaErrorWatch, common_config, consumer_config, producer_config

BASE = {
    "KAFKA_BOOTSTRAP_SERVERS": "b:9092",
    "SOURCE_TOPICS": "t",
    "DEAD_LETTER_TOPIC": "d",
    "PERSONALIZE_TRACKING_ID": "x",
    "AWS_REGION": "eu-west-1",
}


def test_offsets_are_only_committed_by_the_pipeline() -> None:
    config = consumer_config(load_settings(BASE))
    assert config["enable.auto.commit"] is False
    assert config["enable.auto.offset.store"] is False
    assert config["partition.assignment.strategy"] == "cooperative-sticky"


def test_the_prefetch_is_bounded_by_default_and_an_operator_may_change_it() -> None:
    bounded = consumer_config(load_settings(BASE))
    assert bounded["queued.min.messages"] == 20000
    assert bounded["queued.max.messages.kbytes"] == 8192
    more = consumer_config(load_settings(BASE | {"KAFKA_QUEUED_MIN_MESSAGES": "100000"}))
    assert more["queued.min.messages"] == "100000"
    assert more["queued.max.messages.kbytes"] == 8192


def test_a_backlog_is_fetched_in_small_shares_per_partition_unless_the_operator_says() -> None:
    interleaved = consumer_config(load_settings(BASE))
    assert interleaved["max.partition.fetch.bytes"] == 65536
    librdkafkas = consumer_config(
        load_settings(BASE | {"KAFKA_MAX_PARTITION_FETCH_BYTES": "1048576"})
    )
    assert librdkafkas["max.partition.fetch.bytes"] == "1048576"


def test_scram_over_tls(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    config = common_config(
        load_settings(
            BASE
            | {
                "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
                "KAFKA_SASL_USERNAME": "svc",
                "KAFKA_SASL_PASSWORD": "secret",
                "KAFKA_SSL_CA_LOCATION": str(ca),
            }
        )
    )
    assert config["security.protocol"] == "sasl_ssl"
    assert config["sasl.mechanism"] == "SCRAM-SHA-512"
    assert (config["sasl.username"], config["sasl.password"]) == ("svc", "secret")
    assert config["ssl.ca.location"] == str(ca)


def test_msk_iam_uses_oauthbearer_with_a_token_callback() -> None:
    config = common_config(
        load_settings(BASE | {"KAFKA_MSK_IAM": "1", "KAFKA_SECURITY_PROTOCOL": "SASL_SSL"})
    )
    assert config["sasl.mechanism"] == "OAUTHBEARER"
    assert callable(config["oauth_cb"])


def test_authentication_failures_are_kept_as_fatal_and_outages_are_not() -> None:
    watch = KafkaErrorWatch()
    watch(KafkaError(KafkaError._ALL_BROKERS_DOWN))
    watch(KafkaError(KafkaError._TRANSPORT))
    assert watch.fatal is None  # librdkafka reconnects by itself
    watch(KafkaError(KafkaError._AUTHENTICATION, "SASL authentication error"))
    assert watch.fatal is not None
    assert "authentication" in str(watch.fatal).lower()


def test_a_certificate_the_broker_rejects_is_fatal_though_librdkafka_calls_it_transport() -> None:
    watch = KafkaErrorWatch()
    watch(KafkaError(KafkaError._TRANSPORT, "ssl://b:9093/bootstrap: Receive failed: reset"))
    assert watch.fatal is None
    alert = "Receive failed: SSL routines::ssl/tls alert bad certificate: SSL alert number 42"
    watch(KafkaError(KafkaError._TRANSPORT, f"ssl://b:9093/bootstrap: {alert}"))
    assert watch.fatal is not None and "bad certificate" in str(watch.fatal)


def test_repeated_client_errors_are_logged_once_then_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    watch = KafkaErrorWatch(summary_every_s=0.0)  # every later error is past the interval
    with caplog.at_level(logging.WARNING, logger="consumer.kafkaclient"):
        watch(KafkaError(KafkaError._TRANSPORT, "b:9092/bootstrap: Connect failed"))
        for _ in range(50):
            watch(KafkaError(KafkaError._TRANSPORT, "b:9092/bootstrap: Connect failed"))
    first, *summaries = [r for r in caplog.records if r.name == "consumer.kafkaclient"]
    assert "repeats are counted" in first.getMessage()
    assert all(r.getMessage() == "Kafka client errors repeated" for r in summaries)
    assert sum(r.repeats["_TRANSPORT"] for r in summaries) == 50  # type: ignore[attr-defined]


def test_a_consumer_property_reaches_only_the_consumer_and_a_producer_one_only_the_producer() -> (
    None
):
    settings = load_settings(
        BASE
        | {"KAFKA_FETCH_MAX_BYTES": "1048576", "KAFKA_LINGER_MS": "20", "KAFKA_CLIENT_RACK": "az1"}
    )
    consumer, producer = consumer_config(settings), producer_config(settings)
    assert consumer["fetch.max.bytes"] == "1048576" and "fetch.max.bytes" not in producer
    assert producer["linger.ms"] == "20" and "linger.ms" not in consumer
    assert consumer["client.rack"] == producer["client.rack"] == "az1"  # both kinds take it
