"""The service caps glibc's malloc arenas, so a long run's RSS stays flat (bench soak)."""

from __future__ import annotations

import os
import subprocess
import sys

# Six threads allocate at once, then glibc's own malloc_stats() lists the arenas on stderr.
PROBE = """
import ctypes, sys, threading
from consumer.ops.memory import limit_malloc_arenas
applied = limit_malloc_arenas() if sys.argv[1] == "limit" else False
barrier = threading.Barrier(7)
held = []
def allocate():
    held.append(bytearray(1 << 20))
    barrier.wait()
threads = [threading.Thread(target=allocate) for _ in range(6)]
for thread in threads:
    thread.start()
barrier.wait()
ctypes.CDLL(None).malloc_stats()
for thread in threads:
    thread.join()
print(applied)
"""


def _arenas(mode: str, **env: str) -> tuple[int, str]:
    environ = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"} | env
    done = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, env=environ, check=True
    )
    arenas = sum(line.startswith("Arena ") for line in done.stderr.splitlines())
    return arenas, done.stdout.strip()


def test_threads_share_two_arenas_once_limited() -> None:
    assert _arenas("none")[0] == 7  # the default: one per allocating thread
    assert _arenas("limit") == (2, "True")


def test_an_operators_own_setting_wins() -> None:
    assert _arenas("limit", MALLOC_ARENA_MAX="3") == (3, "False")
