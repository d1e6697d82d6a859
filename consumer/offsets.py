"""Which offset is safe to commit, per partition.

Records finish in any order (calls run concurrently, dead-letters are acknowledged later), but a
Kafka commit means "everything below this is done". So the commit position is one past the longest
done prefix of what was consumed — never one past the highest finished offset (pitfall 2). Offsets
may have gaps (compaction, transaction markers): the prefix is over consumed offsets, not integers.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

TopicPartition = tuple[str, int]


@dataclass
class _PartitionState:
    epoch: int
    pending: deque[int] = field(default_factory=deque)
    finished: set[int] = field(default_factory=set)
    position: int | None = None  # next offset to commit, once something is done
    committed: int | None = None  # last position handed out by `to_commit`


class OffsetTracker:
    """Per-partition done-tracking with assignment epochs.

    Each assignment of a partition gets a new epoch; a completion carrying an older epoch belongs to
    records this process no longer owns, so it is ignored rather than committed.
    """

    def __init__(self) -> None:
        self._partitions: dict[TopicPartition, _PartitionState] = {}
        self._next_epoch = 0

    def assign(self, tp: TopicPartition) -> int:
        self._next_epoch += 1
        self._partitions[tp] = _PartitionState(epoch=self._next_epoch)
        return self._next_epoch

    def revoke(self, tp: TopicPartition) -> None:
        self._partitions.pop(tp, None)

    def epoch(self, tp: TopicPartition) -> int | None:
        state = self._partitions.get(tp)
        return state.epoch if state else None

    def track(self, tp: TopicPartition, offset: int) -> None:
        """Register a consumed record; offsets of one partition arrive in increasing order."""
        state = self._partitions[tp]
        if state.pending and offset <= state.pending[-1]:
            raise ValueError(f"offset {offset} of {tp} is not after {state.pending[-1]}")
        state.pending.append(offset)

    def done(self, tp: TopicPartition, offset: int, epoch: int) -> bool:
        """Mark one record done; False when it belongs to an older assignment and was ignored."""
        state = self._partitions.get(tp)
        if state is None or state.epoch != epoch:
            return False
        state.finished.add(offset)
        pending, finished = state.pending, state.finished
        while pending and pending[0] in finished:
            first = pending.popleft()
            finished.discard(first)
            state.position = first + 1
        return True

    def rewind(self, tp: TopicPartition) -> int | None:
        """Forget unfinished records so they can be consumed again; return where to seek."""
        state = self._partitions.get(tp)
        if state is None or not state.pending:
            return None
        first_unfinished = state.pending[0]
        state.pending.clear()
        state.finished.clear()
        return first_unfinished

    def in_flight(self, tp: TopicPartition) -> int:
        state = self._partitions.get(tp)
        return len(state.pending) if state else 0

    def to_commit(self) -> dict[TopicPartition, int]:
        """Positions that moved since the last call; commit these."""
        moved = {}
        for tp, state in self._partitions.items():
            if state.position is not None and state.position != state.committed:
                moved[tp] = state.position
                state.committed = state.position
        return moved

    def uncommit(self, positions: dict[TopicPartition, int]) -> None:
        """A commit failed: hand these positions out again next time."""
        for tp, position in positions.items():
            state = self._partitions.get(tp)
            if state is not None and state.committed == position:
                state.committed = None
