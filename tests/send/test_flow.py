"""Adaptive concurrency and the rate cap."""

from __future__ import annotations

import threading

from consumer.send.flow import AdaptiveLimit, RateLimiter


def test_throttling_halves_the_limit_and_successes_restore_it() -> None:
    limit = AdaptiveLimit(32, cooldown_s=0)
    limit.on_throttle()
    limit.on_throttle()
    assert limit.limit == 8
    for _ in range(10_000):
        limit.on_success()
    assert limit.limit == 32


def test_a_burst_of_throttles_counts_once_per_cooldown() -> None:
    limit = AdaptiveLimit(32, cooldown_s=3600)
    for _ in range(50):
        limit.on_throttle()
    assert limit.limit == 16


def test_limit_never_drops_below_one() -> None:
    limit = AdaptiveLimit(4, cooldown_s=0)
    for _ in range(10):
        limit.on_throttle()
    assert limit.limit == 1


def test_rate_limiter_hands_out_at_most_the_burst_at_once() -> None:
    limiter = RateLimiter(per_second=5)
    granted = 0

    def take() -> None:
        nonlocal granted
        limiter.acquire()
        granted += 1

    for _ in range(5):
        take()
    assert granted == 5
    blocked = threading.Thread(target=take, daemon=True)
    blocked.start()
    blocked.join(timeout=5)  # the sixth token arrives after ~0.2 s
    assert granted == 6


def test_no_cap_never_blocks() -> None:
    limiter = RateLimiter(per_second=None)
    for _ in range(100_000):
        limiter.acquire()
