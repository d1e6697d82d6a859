"""Adaptive concurrency and the rate cap."""

from __future__ import annotations

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


def test_rate_limiter_hands_out_the_burst_then_says_how_long_to_wait() -> None:
    limiter = RateLimiter(per_second=5)
    assert [limiter.reserve() for _ in range(5)] == [0.0] * 5
    wait = limiter.reserve()
    assert 0 < wait <= 0.2  # the sixth token comes within a fifth of a second
    assert limiter.reserve() > 0  # nothing was taken meanwhile


def test_no_cap_never_waits() -> None:
    limiter = RateLimiter(per_second=None)
    assert all(limiter.reserve() == 0.0 for _ in range(100_000))
