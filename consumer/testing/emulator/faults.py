"""Faults the emulator injects into every `personalize-events` operation, and the per-request
draw that applies them.

Faults are an immutable value swapped as a whole, so a test thread can flip them while the
server thread reads them without locks on the hot path.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from enum import Enum
from typing import Any

#: Settings given as lists of strings, kept as tuples.
_LIST_FIELDS = ("reject_event_types", "access_keys", "tracking_ids", "dataset_arns")
#: Longest latency the emulator accepts; more is a typo that would hang a test run.
MAX_LATENCY_MS = 600_000.0


class FaultError(ValueError):
    """A fault setting was rejected; the message names the setting, safe to send back."""


@dataclass(frozen=True, slots=True)
class Faults:
    """What to inject. Ratios are probabilities per call (of any operation), in [0, 1].

    `reject_event_types`: a PutEvents or PutActionInteractions call that passes validation but
    holds an event (an action interaction) of one of these types is rejected whole with
    `InvalidInputException`, as the service rejects bad input it alone can judge. Given as any
    list of strings; kept as a tuple, so the value stays immutable.

    `access_keys`, `tracking_ids` and `dataset_arns`, when not empty, are all the account has: a
    call signed with another access key id gets `UnrecognizedClientException` (revoked or wrong
    credentials); one for another tracker (PutEvents, PutActionInteractions) or another dataset
    (PutItems, PutUsers, PutActions) gets `ResourceNotFoundException` (deleted or mistyped).
    """

    latency_ms: float = 0.0
    throttle_ratio: float = 0.0
    error_5xx_ratio: float = 0.0
    outage: bool = False
    access_denied: bool = False
    reject_event_types: tuple[str, ...] = ()
    access_keys: tuple[str, ...] = ()
    tracking_ids: tuple[str, ...] = ()
    dataset_arns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("latency_ms", "throttle_ratio", "error_5xx_ratio"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise FaultError(f"{name} must be a number")
            if not math.isfinite(value):
                raise FaultError(f"{name} must be finite")
        if not 0 <= self.latency_ms <= MAX_LATENCY_MS:
            raise FaultError(f"latency_ms must be between 0 and {MAX_LATENCY_MS:g}")
        for name in ("throttle_ratio", "error_5xx_ratio"):
            if not 0 <= getattr(self, name) <= 1:
                raise FaultError(f"{name} must be between 0 and 1")
        for name in ("outage", "access_denied"):
            if not isinstance(getattr(self, name), bool):
                raise FaultError(f"{name} must be true or false")
        for name in _LIST_FIELDS:
            items: object = getattr(self, name)
            if not isinstance(items, list | tuple) or not all(
                isinstance(t, str) and t for t in items
            ):
                raise FaultError(f"{name} must be a list of non-empty strings")
            object.__setattr__(self, name, tuple(items))

    def updated(self, changes: Mapping[str, Any]) -> Faults:
        """A copy with `changes` applied; partial updates keep the other settings."""
        unknown = sorted(set(changes) - _FIELD_NAMES)
        if unknown:
            raise FaultError(f"unknown fault setting(s): {', '.join(map(str, unknown))}")
        return replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: lists, not tuples, so it compares equal to what the admin API returns."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in _LIST_FIELDS:
            values[name] = list(values[name])
        return values


_FIELD_NAMES = frozenset(f.name for f in fields(Faults))


class Injected(Enum):
    """The answer a call gets instead of being processed."""

    OUTAGE = "outage"
    ACCESS_DENIED = "access_denied"
    THROTTLE = "throttle"
    INTERNAL_ERROR = "internal_error"
    UNAVAILABLE = "unavailable"


class FaultDraw:
    """Draws one outcome per call; seedable so a demo or benchmark run can be replayed."""

    def __init__(self, seed: int | None = None) -> None:
        self._random = random.Random(seed)

    def draw(self, faults: Faults) -> Injected | None:
        if faults.outage:
            return Injected.OUTAGE
        if faults.access_denied:
            return Injected.ACCESS_DENIED
        rand = self._random.random
        if faults.throttle_ratio and rand() < faults.throttle_ratio:
            return Injected.THROTTLE
        if faults.error_5xx_ratio and rand() < faults.error_5xx_ratio:
            return Injected.INTERNAL_ERROR if rand() < 0.5 else Injected.UNAVAILABLE
        return None
