"""Produce-to-acknowledged latency per event: the endpoint's `acceptedAt` (when the answer left,
after the injected latency) minus the record's Kafka CreateTime, matched by derived eventId."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import BenchError
from workload import ProduceLog


@dataclass(frozen=True)
class Latencies:
    """Latencies in ms (ascending) of the events produced in this run, first acceptance each;
    and what the events file held: its lines, and how many repeated an eventId (resends)."""

    ms: list[float]
    lines: int
    repeats: int

    def summary(self) -> dict[str, Any] | None:
        """The percentiles stored in the JSON, or None when no event could be matched."""
        ordered = self.ms
        if not ordered:
            return None
        return {
            "p50": percentile(ordered, 0.50),
            "p99": percentile(ordered, 0.99),
            "max": ordered[-1],
            "events": len(ordered),
        }


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(0, min(len(ordered) - 1, round(q * len(ordered) + 0.5) - 1))
    return ordered[rank]


def latencies_ms(events_file: Path, produced: ProduceLog) -> Latencies:
    """Read the endpoint's events file (acceptance order, so a repeated eventId's first line is
    its first acceptance) and time every event that `produced` knows."""
    lines = 0
    seen: set[str] = set()
    out: list[float] = []
    with events_file.open() as text:
        for line in text:
            if not line.strip():
                continue
            lines += 1
            event = json.loads(line)
            event_id = event["eventId"]
            if event_id in seen:
                continue
            seen.add(event_id)
            produced_ms = produced.produced_ms.get(event_id)
            if produced_ms is None:
                continue
            accepted_at = event.get("acceptedAt")
            if accepted_at is None:
                raise BenchError(f"{events_file.name}: a line without acceptedAt")
            out.append(accepted_at * 1000 - produced_ms)
    out.sort()
    return Latencies(out, lines, lines - len(seen))
