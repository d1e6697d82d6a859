"""One record through decode → map → validate: the one path `run`, `check`, `replay` and the
benchmark all take, so what `check` reports is what `run` does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from consumer.decode import Decoder
from consumer.mapping import Mapper
from consumer.records import Failure, MappedEvent, Skipped, SourceRecord

Outcome = MappedEvent | Failure | Skipped


class Transform:
    """A record's outcome: an event to send, a `Failure` to dead-letter, or `Skipped` (done).

    Raises what the decoder raises: a `TransientError` (hold the record and try again later) or
    a `FatalError`. `origin` says where a record really came from when that is not where it was
    read: a replay maps a dead-letter record as its original, so derived event ids match.
    """

    def __init__(
        self,
        decoder: Decoder,
        mapper: Mapper,
        origin: Callable[[SourceRecord], SourceRecord] | None = None,
    ) -> None:
        self.decoder, self.mapper = decoder, mapper
        self._decode, self._map = decoder.decode, mapper.map  # bound once: called per record
        self._origin = origin

    def close(self) -> None:
        self.decoder.close()

    def __call__(self, record: SourceRecord) -> Outcome:
        value = self._decode(record.value)
        if isinstance(value, Failure):
            return value
        if self._origin is None:
            return self._map(record, value)
        outcome = self._map(self._origin(record), value)
        # offsets are tracked where the record was read, whatever it was mapped as
        if isinstance(outcome, MappedEvent):
            return outcome._replace(record=record)
        return outcome if isinstance(outcome, Failure) else replace(outcome, record=record)
