"""The `hot` scenario's measure: does one very busy session hold up everyone else?

A session's calls go one at a time (its order), so the hot session itself drains slowly whatever
the consumer does; what must not happen is that its backlog stalls the other sessions (a full
buffer of its records pausing the fetch, say). So the measure is the time from the first accepted
event to the moment every record of the OTHER sessions was accepted, read from the endpoint's
events file (`acceptedAt`), and compared with the same other records without the hot session.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from common import BenchError


def others_accepted(events_file: Path, hot_session_id: str, other_records: int) -> dict[str, Any]:
    """Seconds from the first acceptance (of any event) to the last first-acceptance of an event
    of another session than `hot_session_id`; checks that all `other_records` were accepted."""
    first = math.inf
    last_other = -math.inf
    seen: set[str] = set()
    others = hot = 0
    with events_file.open() as text:
        for line in text:
            if not line.strip():
                continue
            event = json.loads(line)
            if event["eventId"] in seen:
                continue  # a resend: its first acceptance counts
            seen.add(event["eventId"])
            accepted_at = event.get("acceptedAt")
            if accepted_at is None:
                raise BenchError(f"{events_file.name}: a line without acceptedAt")
            first = min(first, accepted_at)
            if event["sessionId"] == hot_session_id:
                hot += 1
            else:
                others += 1
                last_other = max(last_other, accepted_at)
    if others != other_records:
        raise BenchError(
            f"{events_file.name}: {others} events of the other sessions, {other_records} expected"
        )
    return {
        "others_accepted_s": last_other - first if others else None,
        "other_records": others,
        "hot_records": hot,
    }


def ratio(hot: dict[str, Any] | None, baseline: dict[str, Any] | None) -> float | None:
    """The hot run's time for the other sessions over the baseline's; None unless both ran."""
    if not hot or not baseline or "error" in hot or "error" in baseline:
        return None
    with_hot = (hot.get("hot") or {}).get("others_accepted_s")
    without = (baseline.get("hot") or {}).get("others_accepted_s")
    if not with_hot or not without:
        return None
    return float(with_hot / without)
