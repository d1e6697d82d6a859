"""How much the loop may hold before fetching stops: the bound on memory, and when to go on.

Every partition pauses at `max_unfinished` unfinished records. Fetching resumes once the records
not waiting in the busiest session use at most half the room left to them. Resuming at half of
everything stalled every session for as long as the busiest one took to drain, since one call in
flight per session drains it at about 10 events per round trip (bench `hot`, 100,000 records,
20% in one session: the others took 2.3 to 2.8 times as long as without it; 1.3 times this way).

The default, 40,000 records, leaves room for the others beside such a session: its records share
partitions with theirs, so theirs are read only as fast as the room lets the busy one's be
buffered. `hot` with 20,000: the others took 1.51 times as long; with 40,000, 1.09 (bench/README).
"""

from __future__ import annotations


class Budget:
    def __init__(self, max_unfinished: int) -> None:
        self.max_unfinished = max_unfinished
        self.full = False

    def update(self, unfinished: int, busiest: int) -> bool:
        """Whether fetching should stop now, given the unfinished records and how many of them
        wait in the busiest session; True when that changed."""
        if not self.full and unfinished >= self.max_unfinished:
            self.full = True
            return True
        if self.full and unfinished - busiest <= (self.max_unfinished - busiest) // 2:
            self.full = False
            return True
        return False
