"""JSON log lines on stdout, one object per line, with the record's coordinates as fields.

Only what the code puts in `extra` is added, and the code never puts user ids, item ids or
property values there: the PutEvents model marks them sensitive.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from datetime import UTC, datetime
from typing import Any

_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message"}
_NUMBERS = re.compile(r"\d+")


class RepeatFilter(logging.Filter):
    """Passes the first line of a kind, then at most one per `every_s` with the count of those
    held back (`repeated`). librdkafka logs every failed reconnect to a broker that is down:
    hundreds of lines a minute that say one thing. Lines differing only in numbers (ports, ms,
    counts) are of one kind."""

    def __init__(self, every_s: float = 60.0, clock: Any = time.monotonic) -> None:
        super().__init__()
        self._every_s, self._clock = every_s, clock
        self._seen: dict[tuple[int, str], tuple[float, int]] = {}  # kind -> (passed at, held)

    def filter(self, record: logging.LogRecord) -> bool:
        kind = (record.levelno, _NUMBERS.sub("#", record.getMessage()))
        now = self._clock()
        passed, held = self._seen.get(kind, (None, 0))
        if passed is not None and now - passed < self._every_s:
            self._seen[kind] = (passed, held + 1)
            return False
        if len(self._seen) > 1000:  # bounded, whatever librdkafka says
            self._seen.clear()
        self._seen[kind] = (now, 0)
        if held:
            record.repeated = held
        return True


class RetryingIsInfo(logging.Filter):
    """librdkafka warns when a broker that is still loading its coordinators answers "load in
    progress", then retries on its own: the normal first seconds of a fresh broker, not something
    to act on. Such lines are INFO, and pass only where INFO is shown."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.levelno == logging.WARNING and "load in progress: retrying" in message:
            record.levelno, record.levelname = logging.INFO, "INFO"
            return logging.getLogger(record.name).isEnabledFor(logging.INFO)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        line.update((k, v) for k, v in record.__dict__.items() if k not in _STANDARD)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("botocore", "urllib3", "boto3"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    librdkafka = logging.getLogger("librdkafka")
    librdkafka.filters[:] = [RetryingIsInfo(), RepeatFilter()]
