"""What every bench module shares: where bench/ is, its error type and its progress log."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from consumer.transform import Transform

HERE = Path(__file__).resolve().parent


class BenchError(RuntimeError):
    """A scenario could not be measured (a process failed, or did not finish in time)."""


def log(message: str) -> None:
    """Progress on stderr, so stdout keeps only the table and the targets."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def default_transform(tracking_id: str = "bench-tracker") -> Transform:
    """Decode → map → validate exactly as `personalize-consumer run` builds it by default."""
    from consumer.app import build_transform
    from consumer.config import load_settings

    settings = load_settings(
        {
            "KAFKA_BOOTSTRAP_SERVERS": "unused:9092",
            "SOURCE_TOPICS": "bench",
            "DEAD_LETTER_TOPIC": "bench.dead-letter",
            "PERSONALIZE_TRACKING_ID": tracking_id,
            "AWS_REGION": "us-east-1",
        }
    )
    return build_transform(settings)
