"""Commits what the offset tracker says is done, on a timer and whenever the loop must.

A failed commit is not an error worth stopping for (the group may be rebalancing, the
coordinator moving): the positions are handed out again and the next commit carries them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from consumer.commit.offsets import OffsetTracker
from consumer.errors import TransientError
from consumer.ops.metrics import Metrics
from consumer.records import TP

log = logging.getLogger(__name__)


class Committer:
    """Commits the tracker's done positions through `commit` (the source's synchronous commit)."""

    def __init__(
        self,
        tracker: OffsetTracker,
        commit: Callable[[dict[TP, int]], None],
        interval_s: float,
        metrics: Metrics,
    ) -> None:
        self._tracker = tracker
        self._commit = commit
        self._interval_s = interval_s
        self._metrics = metrics
        self._last = time.monotonic()
        #: Every position committed by this process, for the run summary.
        self.committed: dict[TP, int] = {}

    def maybe_commit(self) -> None:
        """Commit if the interval has passed since the last commit."""
        if time.monotonic() - self._last >= self._interval_s:
            self.commit()

    def commit(self) -> None:
        """Commit every position that moved; on failure keep them for the next attempt."""
        self._last = time.monotonic()
        positions = self._tracker.to_commit()
        if not positions:
            return
        try:
            self._commit(positions)
        except TransientError as exc:
            self._tracker.uncommit(positions)
            self._metrics.commit_failures.inc()
            log.warning("commit failed; will retry", extra={"error": str(exc)})
            return
        self._metrics.commit_seconds.observe(time.monotonic() - self._last)
        self.committed.update(positions)
