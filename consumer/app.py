"""Wires the stages together from settings; the one place that knows every concrete part."""

from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType

from confluent_kafka import Consumer, KafkaException

from consumer.config import ConfigError, Settings
from consumer.deadletter import DeadLetterProducer, DeadLetterSink
from consumer.decode import Decoder, load_schema_file, make_decoder
from consumer.delivery import Delivery
from consumer.flowcontrol import AdaptiveLimit, RateLimiter
from consumer.health import Health, serve
from consumer.kafkaconfig import KafkaErrorWatch, common_config, consumer_config
from consumer.mapping import Mapper
from consumer.mappingfile import MappingError, load_mapping
from consumer.metrics import Metrics
from consumer.pipeline import Pipeline, RunSummary, Tuning
from consumer.replay import LeaveInPlace, original
from consumer.sink import PutEventsSink, make_client

log = logging.getLogger(__name__)


def build_mapper(settings: Settings) -> Mapper:
    # Records decode to the reader schema's shape when there is one, else the writer's.
    shape = settings.avro_reader_schema_file or settings.avro_schema_file
    environ = os.environ | {"PERSONALIZE_TRACKING_ID": settings.personalize_tracking_id}
    try:
        return load_mapping(settings.mapping_file, load_schema_file(shape), environ)
    except MappingError as exc:
        raise ConfigError(str(exc)) from None


def build_decoder(settings: Settings) -> Decoder:
    auth = settings.schema_registry_basic_auth_user_info
    try:
        return make_decoder(
            settings.avro_schema_file,
            settings.schema_registry_url,
            auth.get_secret_value() if auth else None,
            settings.avro_reader_schema_file,
        )
    except ValueError as exc:
        raise ConfigError(f"SCHEMA_REGISTRY_* / AVRO_READER_SCHEMA_FILE: {exc}") from None


def build_pipeline(
    settings: Settings, metrics: Metrics | None = None, replay: bool = False
) -> Pipeline:
    """The consumer; with `replay`, the same engine reading the dead-letter topic (replay.py)."""
    if replay:
        settings = settings.model_copy(update={"kafka_group_id": replay_group(settings)})
    mapper = build_mapper(settings)
    decoder = build_decoder(settings)
    metrics = metrics or Metrics()
    limit = AdaptiveLimit(settings.max_in_flight_calls)
    client = make_client(settings.aws_region, max_connections=settings.max_in_flight_calls)
    sink = PutEventsSink(client, limit, RateLimiter(settings.max_calls_per_second), metrics)
    kafka_errors = KafkaErrorWatch()
    dead_letter: DeadLetterSink
    try:
        consumer = Consumer(consumer_config(settings, metrics.on_kafka_stats, kafka_errors))
        if replay:
            dead_letter = LeaveInPlace()
        else:
            dead_letter = DeadLetterProducer(
                common_config(settings, error_cb=kafka_errors),
                settings.dead_letter_topic,
                settings.kafka_group_id,
            )
            dead_letter.check_topic(kafka_errors)
    except KafkaException as exc:  # librdkafka rejects a property before connecting
        raise ConfigError(f"Kafka configuration (KAFKA_*): {exc.args[0].str()}") from None
    return Pipeline(
        consumer=consumer,
        topics=(settings.dead_letter_topic,) if replay else settings.source_topics,
        decoder=decoder,
        mapper=mapper,
        delivery=Delivery(sink, limit),
        dead_letter=dead_letter,
        tuning=Tuning(
            batch_size=settings.consume_batch_size,
            linger_s=settings.batch_linger_ms / 1000,
            max_buffered_records=settings.max_buffered_records,
            commit_interval_s=settings.commit_interval_ms / 1000,
            shutdown_timeout_s=settings.shutdown_timeout_s,
        ),
        metrics=metrics,
        health=Health(stall_after_s=settings.shutdown_timeout_s + 60),
        kafka_errors=kafka_errors,
        origin=original if replay else None,
    )


def replay_group(settings: Settings) -> str:
    """A replay's own consumer group, so its progress is separate and resumable."""
    return f"{settings.kafka_group_id}.replay"


def run(settings: Settings, until_caught_up: bool = False, replay: bool = False) -> RunSummary:
    """Run until SIGTERM/SIGINT (or caught up); always commit what is done and leave the group."""
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("stop requested", extra={"signal": signal.Signals(signum).name})
        stop.set()

    pipeline = build_pipeline(settings, replay=replay)
    server = (
        serve(settings.metrics_port, pipeline.metrics, pipeline.health)
        if (settings.metrics_port)
        else None
    )
    previous = {s: signal.signal(s, request_stop) for s in (signal.SIGTERM, signal.SIGINT)}
    log.info(
        "consuming",
        extra={
            "topics": settings.dead_letter_topic if replay else ",".join(settings.source_topics),
            "group": replay_group(settings) if replay else settings.kafka_group_id,
        },
    )
    try:
        return pipeline.run(stop, until_caught_up=until_caught_up)
    finally:
        pipeline.close()
        if server is not None:
            server.shutdown()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
