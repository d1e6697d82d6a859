"""Values that flow between the stages.

Errors travel as `Failure` values, not exceptions, so every stage has one shape of output and the
pipeline routes failures to the dead-letter path without try/except at each step.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

Headers = list[tuple[str, str | bytes | None]]
#: A Kafka (topic, partition): the unit of assignment, ordering and commits.
TP = tuple[str, int]


class Stage(StrEnum):
    """Where a record failed; written to the dead-letter `stage` header."""

    DECODE = "decode"
    MAP = "map"
    VALIDATE = "validate"
    PUT_EVENTS = "put_events"


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """A Kafka record as consumed, kept byte-for-byte for the dead-letter topic."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers
    timestamp_ms: int | None
    #: The assignment of its partition it was consumed under; results of older ones are dropped.
    epoch: int = 0


@dataclass(frozen=True, slots=True)
class Failure:
    """Why a record can never succeed. `reason` must never carry user data."""

    stage: Stage
    error_class: str
    reason: str


@dataclass(frozen=True, slots=True)
class SessionKey:
    """PutEvents takes events of one (trackingId, userId, sessionId) per call."""

    tracking_id: str
    user_id: str | None
    session_id: str


@dataclass(frozen=True, slots=True)
class MappedEvent:
    """One PutEvents `Event`, ready to send, and the record it came from."""

    record: SourceRecord
    session: SessionKey
    event: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Rejected:
    """A record on its way to the dead-letter topic."""

    record: SourceRecord
    failure: Failure


@dataclass(frozen=True, slots=True)
class Skipped:
    """A record the mapping filters out on purpose: done and counted, never dead-lettered."""

    record: SourceRecord
    reason: str
