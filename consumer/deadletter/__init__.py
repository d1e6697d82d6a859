"""Records that can never succeed: parked on the dead-letter topic with where and why.

`headers.py` is the contract (`__connect.errors.*`), `producer.py` parks records and says when
the broker has them, `replay.py` is the sink of a replay, which leaves failures where they are.
"""

from __future__ import annotations

from consumer.deadletter.headers import dead_letter_headers, original
from consumer.deadletter.producer import DeadLetterProducer, DeadLetterSink
from consumer.deadletter.replay import LeaveInPlace

__all__ = [
    "DeadLetterProducer",
    "DeadLetterSink",
    "LeaveInPlace",
    "dead_letter_headers",
    "original",
]
