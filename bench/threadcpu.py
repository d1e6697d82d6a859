"""Where the consumer's CPU goes, per kind of thread: each thread's user+system CPU read from
/proc/<pid>/task/<tid>/stat from outside the process, so the consumer is not changed to tell."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

_CLK_TCK = os.sysconf("SC_CLK_TCK")

#: The AWS Common Runtime's native threads (`comm` names): its event loops (`AwsEventLoop1`,
#: `AwsEventLoop2`, ...), which carry the PutEvents calls once the consumer sends through the
#: CRT, and its DNS resolver.
CRT_THREAD_PREFIXES = ("AwsEventLoop", "AwsHostResolver")


@dataclass(frozen=True)
class ThreadReading:
    """One thread at one moment: its name (`comm`) and CPU seconds used so far."""

    comm: str
    cpu_s: float


def read_threads(pid: int) -> dict[int, ThreadReading]:
    """Every thread of `pid` that is there now, by tid; {} if the process is gone."""
    task = Path(f"/proc/{pid}/task")
    try:
        tids = os.listdir(task)
    except OSError:
        return {}
    found: dict[int, ThreadReading] = {}
    for tid in tids:
        try:
            text = (task / tid / "stat").read_text()
        except OSError:
            continue  # it exited between the listing and the read
        # "tid (comm) state ...": the comm may hold spaces or ')', so split at the last ')'.
        head, _, tail = text.rpartition(")")
        fields = tail.split()
        if len(fields) < 13:
            continue
        # Fields 14 and 15 of stat (utime, stime), in clock ticks; `fields` starts at field 3.
        ticks = int(fields[11]) + int(fields[12])
        found[int(tid)] = ThreadReading(head.partition("(")[2], ticks / _CLK_TCK)
    return found


@dataclass(frozen=True)
class ThreadKinds:
    """CPU seconds per kind of thread: the main thread (it runs the poll loop), librdkafka's own
    threads (named `rdk:...`), the AWS CRT's event-loop and resolver threads, and the rest
    (Python PutEvents sender threads `put-events-N`, the metrics/health server)."""

    poll_loop: float
    librdkafka: float
    crt: float
    other: float
    threads: int  # distinct tids seen over the run

    @property
    def total(self) -> float:
        return self.poll_loop + self.librdkafka + self.crt + self.other

    def as_dict(self) -> dict[str, float | int]:
        return {
            "poll_loop": round(self.poll_loop, 2),
            "librdkafka": round(self.librdkafka, 2),
            "crt": round(self.crt, 2),
            "other": round(self.other, 2),
            "threads": self.threads,
        }


@dataclass
class ThreadCpu:
    """The latest reading of every thread a process has had: a thread that exited keeps its last
    value. Read about once a second (by the `Monitor`), not at every 20 ms tick: reading ~40
    files 50 times a second would take CPU from the consumer being measured on 2 cores."""

    pid: int
    latest: dict[int, ThreadReading] = field(default_factory=dict)
    _closed: bool = False
    # Held for a whole reading, so that `final` waits for one in progress and none starts after
    # it: after `final` the pid is reaped and may name another process.
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def read(self) -> None:
        with self._lock:
            if not self._closed:
                self._merge(read_threads(self.pid))

    def final(self) -> None:
        """Once the process has exited but before it is reaped (a zombie). Its other threads are
        gone by then, so for them the last periodic reading is what counts (up to ~1 s before
        the exit; `consumer_thread_cpu_unseen_s` says how much that misses). The main thread
        stays as the zombie until reaped, so its CPU is read here, complete."""
        with self._lock:
            self._merge(read_threads(self.pid))
            self._closed = True

    def _merge(self, found: dict[int, ThreadReading]) -> None:
        for tid, reading in found.items():
            known = self.latest.get(tid)
            if known is None or reading.cpu_s >= known.cpu_s:  # CPU time only grows
                self.latest[tid] = reading

    def kinds(self) -> ThreadKinds | None:
        """Sums per kind; None if no thread was ever read."""
        with self._lock:
            latest = dict(self.latest)
        if not latest:
            return None
        sums = {"poll_loop": 0.0, "librdkafka": 0.0, "crt": 0.0, "other": 0.0}
        for tid, reading in latest.items():
            if tid == self.pid:
                sums["poll_loop"] += reading.cpu_s
            elif reading.comm.startswith("rdk:"):
                sums["librdkafka"] += reading.cpu_s
            elif reading.comm.startswith(CRT_THREAD_PREFIXES):
                sums["crt"] += reading.cpu_s
            else:
                sums["other"] += reading.cpu_s
        return ThreadKinds(**sums, threads=len(latest))
