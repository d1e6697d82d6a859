"""When fetching stops and starts again."""

from __future__ import annotations

from consumer.source.budget import Budget


def test_fetching_stops_at_the_bound_and_resumes_at_half() -> None:
    budget = Budget(100)
    assert not budget.update(99, 5)
    assert budget.update(100, 5) and budget.full
    assert not budget.update(60, 5)  # the rest (55) still above half their room (47)
    assert budget.update(50, 5) and not budget.full


def test_a_session_that_drains_slowly_does_not_hold_the_others_back() -> None:
    budget = Budget(100)
    budget.update(100, 80)  # one session waits with 80 of them
    assert budget.full
    # Half of everything would mean waiting until that session drained to 50, at its own pace;
    # the others (20 of the room) resume once they are down to half of what is left to them.
    assert not budget.update(91, 80)
    assert budget.update(90, 80) and not budget.full
