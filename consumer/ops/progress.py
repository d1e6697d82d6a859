"""Progress of long work on a terminal (`check`, `--until-caught-up`): records done, the rate,
and what is left. Silent when stderr is not a terminal: a pod's logs stay JSON lines.

tqdm draws the bar on stderr. While it is shown, log lines are written above it (they still go
to stdout), so the two don't tear each other.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Never

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm


def bar(total: int | None, desc: str) -> tqdm[Never]:
    """A bar of records; `disable=None` is tqdm's "only on a terminal"."""
    return tqdm(
        total=total, desc=desc, unit=" records", file=sys.stderr, disable=None, dynamic_ncols=True
    )


@contextmanager
def following(done: Callable[[], int], total: int | None, desc: str) -> Iterator[None]:
    """A bar that follows `done()` from its own thread, twice a second: the poll loop it watches
    is not touched, or slowed, by drawing it."""
    shown = bar(total, desc)
    if shown.disable:
        yield
        return
    stop = threading.Event()

    def follow() -> None:
        while not stop.wait(0.5):
            shown.update(done() - shown.n)

    thread = threading.Thread(target=follow, name="progress", daemon=True)
    with logging_redirect_tqdm():
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            shown.update(done() - shown.n)
            shown.close()
