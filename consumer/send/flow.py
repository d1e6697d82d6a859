"""How fast to send: an adaptive in-flight limit (AIMD on throttling) and an optional hard rate cap.

A dataset group's PutEvents quota (about 1000 calls/s) is shared by every pod feeding it, so a
throttled consumer halves its concurrency and grows it back one call at a time once throttling
stops, like TCP congestion control. `MAX_CALLS_PER_SECOND` is a fixed cap on top, for sharing the
quota deliberately. Both live on the poll loop's thread: nothing here blocks or locks.
"""

from __future__ import annotations

import time


class AdaptiveLimit:
    """Calls allowed in flight: halved on throttling (once per `cooldown_s`), +1 per window."""

    def __init__(self, maximum: int, cooldown_s: float = 1.0) -> None:
        self.maximum = maximum
        self._limit = float(maximum)
        self._cooldown_s = cooldown_s
        self._last_decrease = -cooldown_s

    @property
    def limit(self) -> int:
        return max(1, int(self._limit))

    def on_throttle(self) -> None:
        now = time.monotonic()
        if now - self._last_decrease >= self._cooldown_s:
            self._limit = max(1.0, self._limit / 2)
            self._last_decrease = now

    def on_success(self) -> None:
        if self._limit < self.maximum:
            self._limit = min(float(self.maximum), self._limit + 1 / self._limit)


class RateLimiter:
    """A token bucket of `per_second` tokens (every attempt, retries included, takes one)."""

    def __init__(self, per_second: float | None) -> None:
        self._rate = per_second
        self._tokens = per_second or 0.0
        self._updated = time.monotonic()

    def reserve(self) -> float:
        """Take a token and return 0, or return how many seconds until one is there."""
        if self._rate is None:
            return 0.0
        now = time.monotonic()
        self._tokens = min(self._rate, self._tokens + (now - self._updated) * self._rate)
        self._updated = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self._rate
