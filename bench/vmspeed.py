"""How fast this machine is right now, in two fixed measures: `python bench/vmspeed.py`.

This VM's speed drifts with no CPU steal counted (bench/README.md): the same consumer code gave
9,035 and 17,789 `dense` events per CPU-second on one day, while `micro` (one thread, pure
Python) moved only from 63,386 to 70,678. A CPU-second is not a fixed amount of work, and not
for every kind of work alike. So `bench/run` takes two readings before and after every scenario:

- `python`: thousands of rounds of fixed Python (dicts, strings, bytes, tuples) per CPU-second of
  the measuring thread, best of a few short tries. What `micro` measures, without the
  consumer's code, so it does not move when the consumer changes.
- `wakeup_us`: CPU µs of the whole process per round trip between two threads through a queue,
  best of a few tries: one thread waking another and waiting for it, as the CRT's event loop and
  the poll loop do for every call.

Only their ratios mean anything; figures of two runs compare at similar readings.
"""

from __future__ import annotations

import queue
import resource
import threading
import time


def _round(n: int = 200) -> int:
    """One round: build, look up and fold a small dict of records, as a poll loop does."""
    table: dict[str, tuple[int, bytes, list[int]]] = {}
    for i in range(n):
        key = f"session-{i}"
        table[key] = (i, key.encode(), [i, i + 1])
    total = 0
    for key, (i, raw, pair) in table.items():
        total += len(key) + i + len(raw) + pair[1]
    return total


def python_speed(tries: int = 5, rounds: int = 400) -> float:
    """Thousands of rounds per CPU-second of this thread, best of `tries` (~0.03 s each)."""
    best = 0.0
    for _ in range(tries):
        started = time.thread_time()
        for _ in range(rounds):
            _round()
        spent = time.thread_time() - started
        if spent > 0:
            best = max(best, rounds / spent / 1000)
    return round(best, 2)


def _process_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # both threads
    return usage.ru_utime + usage.ru_stime


def _echo(there: queue.SimpleQueue[int | None], back: queue.SimpleQueue[int]) -> None:
    """The second thread of `wakeup_us`: hands every item back until None."""
    while (item := there.get()) is not None:
        back.put(item)


def wakeup_us(tries: int = 3, trips: int = 2000) -> float:
    """CPU µs of this process per round trip to a second thread and back, best of `tries`."""
    best = float("inf")
    for _ in range(tries):
        there: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        back: queue.SimpleQueue[int] = queue.SimpleQueue()
        thread = threading.Thread(target=_echo, args=(there, back), name="vmspeed-echo")
        thread.start()
        started = _process_cpu_s()
        for trip in range(trips):
            there.put(trip)
            back.get()
        best = min(best, (_process_cpu_s() - started) / trips * 1e6)
        there.put(None)
        thread.join()
    return round(best, 2)


def readings() -> dict[str, float]:
    """Both measures, about 0.3 s of wall time."""
    return {"python": python_speed(), "wakeup_us": wakeup_us()}


if __name__ == "__main__":
    print(readings())
