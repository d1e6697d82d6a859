"""Which offset is safe to commit, per partition.

Records finish in any order (calls run concurrently, dead-letters are acknowledged later), but a
Kafka commit means "everything below this is done". So the commit position is one past the longest
done prefix of what was consumed — never one past the highest finished offset (pitfall 2). Offsets
may have gaps (compaction, transaction markers): the prefix is over consumed offsets, not integers.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from consumer.records import TP


@dataclass
class _PartitionState:
    epoch: int
    pending: deque[int] = field(default_factory=deque)
    finished: set[int] = field(default_factory=set)
    position: int | None = None  # next offset to commit, once something is done
    committed: int | None = None  # last position handed out by `to_commit`


class OffsetTracker:
    """Per-partition done-tracking with assignment epochs.

    The source gives each assignment of a partition a new epoch; a completion carrying an older
    epoch belongs to records this process no longer owns, so it is ignored rather than committed.
    """

    def __init__(self) -> None:
        self._partitions: dict[TP, _PartitionState] = {}
        self._unfinished = 0

    @property
    def unfinished(self) -> int:
        """Records consumed and not yet done, over all partitions: the memory to bound."""
        return self._unfinished

    def assign(self, tp: TP, epoch: int) -> None:
        """Start tracking `tp` afresh under the source's new `epoch` for it."""
        self.revoke(tp)
        self._partitions[tp] = _PartitionState(epoch=epoch)

    def revoke(self, tp: TP) -> None:
        state = self._partitions.pop(tp, None)
        if state is not None:
            self._unfinished -= len(state.pending) - len(state.finished)

    def epoch(self, tp: TP) -> int | None:
        state = self._partitions.get(tp)
        return state.epoch if state else None

    def track(self, tp: TP, offset: int) -> None:
        """Register a consumed record; offsets of one partition arrive in increasing order."""
        state = self._partitions[tp]
        if state.pending and offset <= state.pending[-1]:
            raise ValueError(f"offset {offset} of {tp} is not after {state.pending[-1]}")
        state.pending.append(offset)
        self._unfinished += 1

    def done(self, tp: TP, offset: int, epoch: int) -> bool:
        """Mark one record done; False when it belongs to an older assignment and was ignored."""
        state = self._partitions.get(tp)
        if state is None or state.epoch != epoch:
            return False
        if offset in state.finished:
            return True
        state.finished.add(offset)
        self._unfinished -= 1
        pending, finished = state.pending, state.finished
        while pending and pending[0] in finished:
            first = pending.popleft()
            finished.discard(first)
            state.position = first + 1
        return True

    def to_commit(self) -> dict[TP, int]:
        """Positions that moved since the last call; commit these."""
        moved = {}
        for tp, state in self._partitions.items():
            if state.position is not None and state.position != state.committed:
                moved[tp] = state.position
                state.committed = state.position
        return moved

    def uncommit(self, positions: dict[TP, int]) -> None:
        """A commit failed: hand these positions out again next time."""
        for tp, position in positions.items():
            state = self._partitions.get(tp)
            if state is not None and state.committed == position:
                state.committed = None
