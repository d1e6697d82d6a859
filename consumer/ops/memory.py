"""Process memory tuning that must happen before the first thread starts.

glibc gives each thread that allocates its own malloc arena (up to 8 per core), and memory
freed into one arena is not reused by another. librdkafka's threads, the CRT's event loop and
the poll loop all allocate, so a long run's RSS crept: a 1,000,000-record soak grew 13.7% after
its first tenth with the default arenas and 6.8% with two
(`bench/results/partial-2026-12-02T0324-82010d0-soak-malloc-arena-max-2.json`).
"""

from __future__ import annotations

import ctypes
import os

#: glibc's `mallopt` parameter for the arena limit (malloc.h: M_ARENA_MAX).
M_ARENA_MAX = -8
#: The arenas the service runs with unless the operator sets `MALLOC_ARENA_MAX` themselves.
DEFAULT_ARENAS = 2


def limit_malloc_arenas(arenas: int = DEFAULT_ARENAS) -> bool:
    """Cap glibc's malloc arenas; True when applied.

    Call it before any thread exists: glibc reads the limit when a second arena is first
    needed. Leaves an operator's own `MALLOC_ARENA_MAX` alone (glibc has already applied it),
    and does nothing where there is no glibc `mallopt` (musl, macOS).
    """
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_ARENA_MAX, arenas))
