"""`personalize-consumer replay`: the dead-letter topic consumed again, after a fix.

The dead-letter topic is read like a source topic, by its own group (`<KAFKA_GROUP_ID>.replay`),
so progress is committed and a replay can be stopped and resumed. Each record is mapped under its
original coordinates (`headers.original`), so a derived eventId is the one the first attempt used
and per-topic tracking ids still apply. Records that still fail are left where they are: counted
and committed past, never dead-lettered a second time.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

from consumer.deadletter.producer import OnAcked
from consumer.errors import FatalError
from consumer.records import TP, Rejected

log = logging.getLogger(__name__)


class LeaveInPlace:
    """The dead-letter sink of a replay: a record that still fails stays where it already is."""

    fatal: FatalError | None = None
    outstanding = 0

    def send(self, item: Rejected, on_acked: OnAcked) -> None:
        log.info(
            "still failing; left on the dead-letter topic",
            extra={
                "partition": item.record.partition,
                "offset": item.record.offset,
                "stage": item.failure.stage.value,
                "error": item.failure.error_class,
            },
        )
        on_acked(item)

    def outstanding_for(self, _partitions: Collection[TP]) -> int:
        return 0

    def poll(self, _timeout_s: float = 0.0) -> None:
        return None

    def close(self, _timeout_s: float = 0.0) -> None:
        return None
