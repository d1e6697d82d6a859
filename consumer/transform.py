"""One record through decode → map → validate: the one path `run`, `check`, `replay` and the
benchmark all take, so what `check` reports is what `run` does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace

from consumer.decode import Decoder
from consumer.mapping import EntryMapper, Mapper
from consumer.records import TOMBSTONE, Failure, MappedEvent, Skipped, SourceRecord

Outcome = MappedEvent | Failure | Skipped


class Transform:
    """A record's outcome: an event to send, a `Failure` to dead-letter, or `Skipped` (done).

    Raises what the decoder raises: a `TransientError` (hold the record and try again later) or
    a `FatalError`. `origin` says where a record really came from when that is not where it was
    read: a replay maps a dead-letter record as its original, so derived event ids match.
    `routes` are the topics that feed another operation than PutEvents, each with its own
    decoder (its own schema) and mapper; on them a tombstone (a null value) is skipped: the API
    has no delete.
    """

    def __init__(
        self,
        decoder: Decoder,
        mapper: Mapper,
        origin: Callable[[SourceRecord], SourceRecord] | None = None,
        routes: Mapping[str, tuple[Decoder, EntryMapper]] | None = None,
    ) -> None:
        self.decoder, self.mapper = decoder, mapper
        self._decode, self._map = decoder.decode, mapper.map  # bound once: called per record
        self._origin = origin
        self.routes = dict(routes or {})
        self._routes = {topic: (d.decode, m.map) for topic, (d, m) in self.routes.items()}

    def close(self) -> None:
        for decoder in {
            id(d): d for d in [self.decoder, *(d for d, _m in self.routes.values())]
        }.values():
            decoder.close()

    def __call__(self, record: SourceRecord) -> Outcome:
        origin = record if self._origin is None else self._origin(record)
        decode, map_ = self._decode, self._map
        if self._routes:
            route = self._routes.get(origin.topic)
            if route is not None:
                if record.value is None:  # a tombstone: no delete in the API
                    return Skipped(record, TOMBSTONE)
                decode, map_ = route
        value = decode(record.value)
        if isinstance(value, Failure):
            return value
        if self._origin is None:
            return map_(record, value)
        outcome = map_(origin, value)
        # offsets are tracked where the record was read, whatever it was mapped as
        if isinstance(outcome, MappedEvent):
            return outcome._replace(record=record)
        return outcome if isinstance(outcome, Failure) else replace(outcome, record=record)
