"""Checks of settings against each other, and of librdkafka properties this consumer fixes.

They run on the raw values, beside pydantic's checks of each setting, so a start-up that fails
names every problem at once: a cross-field problem is not held back until each field is valid.
A check that needs a setting that is itself invalid is skipped (that setting is reported).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

_UNKNOWN = object()

#: librdkafka properties this consumer sets itself, and why they can't be given as KAFKA_*.
FIXED_PROPERTIES = {
    "enable.auto.commit": "offsets are committed only once their records are done",
    "enable.auto.offset.store": "offsets are committed only once their records are done",
    "partition.assignment.strategy": "cooperative-sticky, which the rebalance handling relies on",
    "isolation.level": "read_committed: records of aborted transactions are never sent",
    "enable.partition.eof": "the consumer relies on its default",
    "max.poll.interval.ms": "set MAX_POLL_INTERVAL_MS instead",
    "group.id": "set KAFKA_GROUP_ID instead",
    "enable.idempotence": "the dead-letter producer is idempotent, so a retry is never a copy",
    "acks": "the dead-letter producer waits for every in-sync replica (acks=all)",
    "allow.auto.create.topics": "DEAD_LETTER_TOPIC must exist: it is never made by accident",
}


def fixed_property_problems(properties: Mapping[str, str]) -> list[str]:
    return [
        f"KAFKA_{name.upper().replace('.', '_')}: {name} can't be set: {why}"
        for name, why in FIXED_PROPERTIES.items()
        if name in properties
    ]


def cross_field_problems(values: Mapping[str, Any]) -> list[str]:
    """Settings that are fine alone and wrong together (`values`: raw, lower-case names)."""
    get = _reader(values)
    problems: list[str] = []
    protocol = get("kafka_security_protocol", lambda v: str(v).upper(), "PLAINTEXT")
    mechanism = get("kafka_sasl_mechanism", str, None)
    msk_iam = get("kafka_msk_iam", _boolean, False)
    sasl = isinstance(protocol, str) and protocol.startswith("SASL_")
    if msk_iam is True:
        if protocol not in ("SASL_SSL", _UNKNOWN):
            problems.append("KAFKA_MSK_IAM needs KAFKA_SECURITY_PROTOCOL=SASL_SSL")
        if mechanism not in (None, "OAUTHBEARER", _UNKNOWN):
            problems.append("KAFKA_MSK_IAM uses KAFKA_SASL_MECHANISM=OAUTHBEARER")
    elif sasl and mechanism is None:
        problems.append(f"KAFKA_SASL_MECHANISM is required with {protocol}")
    elif (
        sasl
        and mechanism not in ("OAUTHBEARER", _UNKNOWN)
        and (not values.get("kafka_sasl_username") or values.get("kafka_sasl_password") is None)
    ):
        problems.append(
            f"KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD are required with {mechanism}"
        )
    if (values.get("kafka_ssl_certificate_location") is None) != (
        values.get("kafka_ssl_key_location") is None
    ):
        problems.append("KAFKA_SSL_CERTIFICATE_LOCATION and KAFKA_SSL_KEY_LOCATION go together")
    auth = values.get("schema_registry_basic_auth_user_info")
    if auth is not None:
        if not values.get("schema_registry_url"):
            problems.append("SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO needs SCHEMA_REGISTRY_URL")
        if ":" not in str(auth):
            problems.append("SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO must be user:password")
    topics = get("source_topics", _topics, ())
    dead_letter = values.get("dead_letter_topic")
    if topics is not _UNKNOWN and dead_letter and str(dead_letter).strip() in topics:
        problems.append("DEAD_LETTER_TOPIC must not be one of SOURCE_TOPICS")
    shutdown = get("shutdown_timeout_s", float, 30.0)
    max_poll = get("max_poll_interval_ms", int, 300_000)
    if _UNKNOWN not in (shutdown, max_poll) and shutdown * 1000 * 2 > max_poll:
        # draining (or a revoke's wait) must end well before the group gives up on us
        problems.append("SHUTDOWN_TIMEOUT_S must be at most half of MAX_POLL_INTERVAL_MS")
    return problems


def _reader(values: Mapping[str, Any]) -> Callable[[str, Callable[[Any], Any], Any], Any]:
    def get(name: str, parse: Callable[[Any], Any], default: Any) -> Any:
        if name not in values:
            return default
        try:
            return parse(values[name])
        except (TypeError, ValueError):
            return _UNKNOWN

    return get


def _boolean(value: Any) -> bool:
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(value)


def _topics(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(t.strip() for t in value.split(",") if t.strip())
    return tuple(value)
