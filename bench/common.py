"""What every bench module shares: where bench/ is, its error type and its progress log."""

from __future__ import annotations

import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


class BenchError(RuntimeError):
    """A scenario could not be measured (a process failed, or did not finish in time)."""


def log(message: str) -> None:
    """Progress on stderr, so stdout keeps only the table and the targets."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
