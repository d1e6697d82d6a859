"""The JSON-lines record of accepted events, the emulator's observable side effect.

Lines are buffered in memory and written in one go by a periodic flush (and on shutdown), so an
accepted call costs a list append rather than a system call. Lines are in acceptance order.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode


class EventsFile:
    """Appends one line per accepted event: its session fields, then the event as received.

    With `accepted_at`, each line ends with one more field, `acceptedAt`: epoch seconds (float)
    when the call's answer was due to leave, the same for every event of the call. Off by
    default: readers that compare whole lines see exactly the fields that were sent.
    """

    def __init__(self, path: Path, accepted_at: bool = False) -> None:
        self.path = path
        self.accepted_at = accepted_at
        self._file = path.open("a", encoding="utf-8")
        self._pending: list[str] = []

    def append(
        self,
        tracking_id: Any,
        user_id: Any,
        session_id: Any,
        events: Iterable[Mapping[str, Any]],
        accepted_at: float = 0.0,
    ) -> None:
        """Queue one line per event; `accepted_at` is written only when the file records it."""
        session = {"trackingId": tracking_id, "userId": user_id, "sessionId": session_id}
        stamp = {"acceptedAt": accepted_at} if self.accepted_at else {}
        pending = self._pending
        for event in events:
            pending.append(_encode({**session, **event, **stamp}))
            pending.append("\n")

    def flush(self) -> None:
        if self._pending:
            data = "".join(self._pending)
            self._pending.clear()
            self._file.write(data)
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self.flush()
            self._file.close()
