"""The offset tracker: never commit past an unfinished record, reach the end once all are done."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumer.commit.offsets import OffsetTracker

TP = ("clicks", 0)


@st.composite
def consumed_and_completion_order(draw: st.DrawFn) -> tuple[list[int], list[int]]:
    gaps = draw(st.lists(st.integers(min_value=1, max_value=3), min_size=1, max_size=60))
    start = draw(st.integers(min_value=0, max_value=1000))
    offsets, current = [], start
    for gap in gaps:
        offsets.append(current)
        current += gap
    order = draw(st.permutations(offsets))
    return offsets, list(order)


@given(consumed_and_completion_order())
def test_commit_position_never_passes_an_unfinished_record(
    case: tuple[list[int], list[int]],
) -> None:
    offsets, order = case
    tracker = OffsetTracker()
    epoch = 1
    tracker.assign(TP, epoch)
    for offset in offsets:
        tracker.track(TP, offset)
    finished: set[int] = set()
    committed: int | None = None
    for offset in order:
        tracker.done(TP, offset, epoch)
        finished.add(offset)
        committed = tracker.to_commit().get(TP, committed)
        unfinished = [o for o in offsets if o not in finished]
        assert tracker.unfinished == len(unfinished)
        if committed is not None and unfinished:
            assert committed <= min(unfinished)
    assert committed == offsets[-1] + 1


@given(consumed_and_completion_order(), st.integers(min_value=0, max_value=60))
def test_revocation_drops_late_results(case: tuple[list[int], list[int]], cut: int) -> None:
    offsets, order = case
    tracker = OffsetTracker()
    old_epoch = 1
    tracker.assign(TP, old_epoch)
    for offset in offsets:
        tracker.track(TP, offset)
    for offset in order[:cut]:
        tracker.done(TP, offset, old_epoch)
    before = tracker.to_commit().get(TP)
    tracker.revoke(TP)
    assert tracker.unfinished == 0
    new_epoch = 2
    tracker.assign(TP, new_epoch)
    # results of the old assignment that finish now must not move the new assignment's position
    assert all(not tracker.done(TP, offset, old_epoch) for offset in order[cut:])
    assert tracker.to_commit() == {}
    if before is not None:
        assert before <= offsets[-1] + 1


def test_failed_commit_is_handed_out_again() -> None:
    tracker = OffsetTracker()
    epoch = 1
    tracker.assign(TP, epoch)
    tracker.track(TP, 5)
    tracker.done(TP, 5, epoch)
    positions = tracker.to_commit()
    assert positions == {TP: 6}
    assert tracker.to_commit() == {}
    tracker.uncommit(positions)
    assert tracker.to_commit() == {TP: 6}


def test_offsets_must_increase() -> None:
    tracker = OffsetTracker()
    tracker.assign(TP, 1)
    tracker.track(TP, 3)
    with pytest.raises(ValueError, match="not after"):
        tracker.track(TP, 3)
