"""Values that flow between the stages.

Errors travel as `Failure` values, not exceptions, so every stage has one shape of output and the
pipeline routes failures to the dead-letter path without try/except at each step.

The three made for every record (`SourceRecord`, `SessionKey`, `MappedEvent`) are named tuples:
built, hashed and compared in C, they cost a third of what frozen dataclasses cost, and a session
key is a dictionary key several times per record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

Headers = Sequence[tuple[str, str | bytes | None]]
#: A Kafka (topic, partition): the unit of assignment, ordering and commits.
TP = tuple[str, int]


class Stage(StrEnum):
    """Where a record failed; written to the dead-letter `stage` header."""

    DECODE = "decode"
    MAP = "map"
    VALIDATE = "validate"
    PUT_EVENTS = "put_events"  # any of the five operations: the header value is kept as it was


class SourceRecord(NamedTuple):
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


class SessionKey(NamedTuple):
    """What one call's entries share: a call carries entries of one key, one call per key in
    flight. PutEvents takes events of one (trackingId, userId, sessionId) per call. For the
    other operations `tracking_id` is the call's target (a dataset ARN, or the tracking id of
    PutActionInteractions), `user_id` is None and `session_id` names the source partition: the
    entries of one partition go in offset order, so the last update of an id wins."""

    tracking_id: str
    user_id: str | None
    session_id: str
    operation: str = "PutEvents"


class Operation(NamedTuple):
    """One operation of the `personalize-events` API, as botocore's model shapes it."""

    #: The request's list member, the structure of one entry, and the member naming the target.
    member: str
    entry: str
    target: str
    #: The entry member that identifies what it updates (superseded within a call); None for
    #: interactions, each of which counts.
    key: str | None


OPERATIONS = {
    "PutEvents": Operation("eventList", "Event", "trackingId", None),
    "PutItems": Operation("items", "Item", "datasetArn", "itemId"),
    "PutUsers": Operation("users", "User", "datasetArn", "userId"),
    "PutActions": Operation("actions", "Action", "datasetArn", "actionId"),
    "PutActionInteractions": Operation(
        "actionInteractions", "ActionInteraction", "trackingId", None
    ),
}


class MappedEvent(NamedTuple):
    """One PutEvents `Event`, ready to send, and the record it came from."""

    record: SourceRecord
    session: SessionKey
    event: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Rejected:
    """A record on its way to the dead-letter topic."""

    record: SourceRecord
    failure: Failure


#: The `Skipped` reason of a null value on a catalog topic: the API has no delete.
TOMBSTONE = "tombstone"


@dataclass(frozen=True, slots=True)
class Skipped:
    """A record the mapping filters out on purpose, or a tombstone: done and counted, never
    dead-lettered."""

    record: SourceRecord
    reason: str
