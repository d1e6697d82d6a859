"""The five `personalize-events` operations the emulator serves, read from botocore's model.

Methods, paths and request members come from the model boto3 itself sends with, so a route
cannot drift from what a client calls; only what the emulator does with each (the counter of its
accepted entries) is stated here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache, partial
from typing import Any

import botocore.session

from consumer.mapping.validation import (
    OPERATIONS,
    Violation,
    validate_put_events,
    validate_request,
)

SERVICE_NAME = "personalize-events"

#: The `Stats` field that counts each operation's accepted entries.
ACCEPTED_COUNTERS = {
    "PutEvents": "accepted_events",
    "PutItems": "accepted_items",
    "PutUsers": "accepted_users",
    "PutActions": "accepted_actions",
    "PutActionInteractions": "accepted_action_interactions",
}


@dataclass(frozen=True, slots=True)
class Operation:
    """One operation: where it is called, what its body holds and how it is checked."""

    name: str
    method: str
    path: str
    entries_key: str  # The list member: eventList, items, users, actions, actionInteractions.
    target_key: str  # What the call writes to: trackingId (an event tracker) or datasetArn.
    accepted_counter: str
    validate: Callable[[Mapping[str, Any]], list[Violation]]

    @property
    def to_tracker(self) -> bool:
        """Calls for an event tracker (PutEvents, PutActionInteractions), not a dataset."""
        return self.target_key == "trackingId"


@cache
def routes() -> dict[tuple[str, str], Operation]:
    """(method, path) -> operation, built once on first use (loading the model takes a while)."""
    model = botocore.session.get_session().get_service_model(SERVICE_NAME)
    table: dict[tuple[str, str], Operation] = {}
    for name, shapes in OPERATIONS.items():
        entries_key: str = shapes[0]  # The request's list member comes first.
        operation_model = model.operation_model(name)
        members = operation_model.input_shape.members
        target_key = "trackingId" if "trackingId" in members else "datasetArn"
        if target_key not in members or entries_key not in members:
            raise RuntimeError(f"{SERVICE_NAME} model changed the members of {name}")
        # PutEvents keeps its own, pre-compiled checker: it is the hot path of every benchmark.
        validate = validate_put_events if name == "PutEvents" else partial(validate_request, name)
        http = operation_model.http
        table[(http["method"], http["requestUri"])] = Operation(
            name=name,
            method=http["method"],
            path=http["requestUri"],
            entries_key=entries_key,
            target_key=target_key,
            accepted_counter=ACCEPTED_COUNTERS[name],
            validate=validate,
        )
    return table
