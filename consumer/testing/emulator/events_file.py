"""The JSON-lines record of accepted entries, the emulator's observable side effect.

One line per accepted entry of any operation. PutEvents lines carry no operation name, so they
stay exactly what they were when PutEvents was the only operation; the other four say which
operation they come from, since an item, a user and an action look alike otherwise.

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
    """Appends one line per accepted entry, its call's fields first, then the entry as received.

    PutEvents (`append`): `{"trackingId", "userId", "sessionId", **event}`. The others
    (`append_entries`): `{"operation", "datasetArn" or "trackingId", **entry}`.

    With `accepted_at`, each line ends with one more field, `acceptedAt`: epoch seconds (float)
    when the call's answer was due to leave, the same for every entry of the call. Off by
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

    def append_entries(
        self,
        operation: str,
        target_key: str,
        target: Any,
        entries: Iterable[Mapping[str, Any]],
        accepted_at: float = 0.0,
    ) -> None:
        """Queue one line per entry of a PutItems, PutUsers, PutActions or PutActionInteractions
        call; `target_key` is `datasetArn` or `trackingId`, whichever the call was for."""
        head = {"operation": operation, target_key: target}
        stamp = {"acceptedAt": accepted_at} if self.accepted_at else {}
        pending = self._pending
        for entry in entries:
            pending.append(_encode({**head, **entry, **stamp}))
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
