"""The rules of a `MappingPlan` as small closures (`compiled.py` calls them from the code it
generates): per record, dictionary lookups and the conversions each field needs, never parsing.

A conversion that can never work raises `Unmappable`, whose reason names the field, the path and
the rule, never the value: the model marks ids and properties sensitive.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from operator import methodcaller
from typing import Any

from consumer.mapping.plan import Source, Unit
from consumer.mapping.validation import check_property_keys
from consumer.records import Stage


class Unmappable(Exception):
    """A value that can never become its PutEvents field; `reason` names fields, never values."""

    def __init__(self, rule: str, reason: str, stage: Stage = Stage.MAP) -> None:
        super().__init__(reason)
        self.rule, self.reason, self.stage = rule, reason, stage


Getter = Callable[[Mapping[str, Any]], Any]
#: What a hostile value can make a conversion raise; anything else is a bug and propagates.
CONVERSION_ERRORS = (LookupError, TypeError, ValueError, AttributeError, OverflowError)


def _json_default(value: object) -> str:
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError("not JSON-encodable")


#: Built once: `json.dumps` with options builds an encoder per call, which dominated its cost.
_encode_json = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_json_default
).encode


#: What `_encode_json` writes for a string (json's C function, the same for ensure_ascii=False).
_quote: Callable[[str], str] = json.encoder.encode_basestring


def _encode_properties(properties: dict[Any, Any]) -> str:
    """`_encode_json`, with the usual map of strings done without the encoder's per-call setup."""
    for key, value in properties.items():
        if type(key) is not str or type(value) is not str:
            return _encode_json(properties)
    quote = _quote
    return "{" + ",".join([quote(k) + ":" + quote(v) for k, v in properties.items()]) + "}"


def _path_getter(path: tuple[str, ...]) -> Getter:
    if len(path) == 1:
        return methodcaller("get", path[0])  # no Python frame: the common case, kept cheap

    def get_path(value: Mapping[str, Any]) -> Any:
        found: Any = value
        for key in path:
            if type(found) is not dict and not isinstance(found, Mapping):
                return None  # null on the way (or another branch of a union): no value
            found = found.get(key)
        return found

    return get_path


def getter(source: Source, convert: Callable[[Any], Any] | None) -> Getter:
    """A constant, one path, or the first non-null of several; `convert`ed if the plan says so."""
    if not source.paths:
        const = source.const
        return lambda _value: const
    getters = tuple(_path_getter(p) for p in source.paths)

    def first(value: Mapping[str, Any]) -> Any:
        for get in getters:
            found = get(value)
            if found is not None:
                return found
        return None

    get = getters[0] if len(getters) == 1 else first
    if convert is None or not source.convert:
        return get

    def converted(value: Mapping[str, Any]) -> Any:
        found = get(value)
        return None if found is None else convert(found)

    return converted


def text(found: Any) -> Any:
    """Ids may be numbers or UUIDs in the writer schema; PutEvents wants strings."""
    kind = type(found)
    return str(found) if kind is int or kind is uuid.UUID else found  # validation names the rest


#: The years 1 to 9999 in epoch seconds: what a time can be (datetime's range).
_FIRST_SECOND, _LAST_SECOND = -62_135_596_800, 253_402_300_799
#: Units of numeric `sentAt` sources, as the divisor to epoch seconds.
_PER_SECOND = {"seconds": 1, "millis": 1000, "micros": 1_000_000}


def sent_at_getter(source: Source, unit: Unit) -> Getter:
    """`sentAt` as epoch seconds, the number PutEvents takes.

    A number rather than a datetime, so the request body encodes without a Python callback per
    event; the value is the one botocore's serializer writes for the same time (to the µs).
    """
    get = getter(source, None)
    where = source.describe()
    per_second = _PER_SECOND.get(unit)

    def sent_at(value: Mapping[str, Any]) -> Any:
        found = get(value)
        if type(found) is datetime and unit == "logical":
            return _epoch_seconds(found)
        if found is None:
            return None
        if per_second is not None:
            return _from_number(found, per_second, unit, where)
        if unit == "iso8601":
            return _epoch_seconds(_from_iso8601(found, where))
        if isinstance(found, datetime):
            return _epoch_seconds(found)
        if type(found) is int:  # a writer schema without the logical type: epoch millis
            return _from_number(found, 1000, "millis", where)
        raise Unmappable("timestamp", f"sentAt: not a time at {where}")

    return sent_at


def _epoch_seconds(found: datetime) -> float:
    """As botocore writes a datetime: a naive one is UTC (Avro's local-timestamp types)."""
    return (found if found.tzinfo is not None else found.replace(tzinfo=UTC)).timestamp()


def _from_number(found: Any, per_second: int, unit: str, where: str) -> int | float:
    kind = type(found)
    if kind is str:
        try:
            found = int(found) if found.isdigit() else float(found)
        except ValueError:
            raise Unmappable("timestamp", f"sentAt: not a number at {where}") from None
    elif kind is not int and kind is not float:
        raise Unmappable("timestamp", f"sentAt: not a number at {where}")
    try:
        seconds = found if per_second == 1 else found / per_second
    except OverflowError:  # an int too large for a float
        seconds = math.inf
    if not _FIRST_SECOND <= seconds <= _LAST_SECOND:  # not a time at all (NaN included)
        raise Unmappable("timestamp", f"sentAt: out of range at {where} ({unit})")
    return seconds  # type: ignore[no-any-return]


def _from_iso8601(found: Any, where: str) -> datetime:
    if type(found) is not str:
        raise Unmappable("timestamp", f"sentAt: not an ISO-8601 string at {where}")
    try:
        parsed = datetime.fromisoformat(found)
    except ValueError:
        raise Unmappable("timestamp", f"sentAt: not an ISO-8601 time at {where}") from None
    if parsed.tzinfo is None:
        reason = f"sentAt: ISO-8601 time without a UTC offset (Z or +hh:mm) at {where}"
        raise Unmappable("timestamp", reason)
    return parsed


def number_converter(source: Source) -> Callable[[Any], Any]:
    where = source.describe()

    def number(found: Any) -> Any:
        if type(found) is str:
            try:
                return float(found)
            except ValueError:
                raise Unmappable("number", f"eventValue: not a number at {where}") from None
        return found  # a number, or a type the validation reports by field name

    return number


def impression_items(source: Source, delimiter: str | None) -> Callable[[Any], Any]:
    """Items of an array (ids as strings) or of a delimited string; none: left out."""
    where, convert = source.describe(), source.convert

    def items(found: Any) -> list[Any] | None:
        if delimiter is None:
            if type(found) is list or isinstance(found, (list, tuple)):
                if convert:
                    return [text(item) for item in found] or None
                # the decoded record's own list: nothing else holds it (a copy was ~90 bytes
                # more per buffered event)
                return (found if type(found) is list else list(found)) or None
        elif type(found) is str:
            return [
                item for item in (part.strip() for part in found.split(delimiter)) if item
            ] or None
        expected = "a delimited string" if delimiter is not None else "a list"
        raise Unmappable("type", f"impression: not {expected} at {where}")

    return items


def attribution() -> Callable[[Any], dict[str, Any]]:
    """`metricAttribution` for a source name: one shared object per name. Buffered events wait
    in memory (MAX_BUFFERED_RECORDS), and a dict apiece was ~200 bytes of each; the same few
    names recur. Events are never changed once mapped."""
    shared: dict[str, dict[str, Any]] = {}

    def metric_attribution(found: Any) -> dict[str, Any]:
        if type(found) is not str:  # validation says what is wrong with it
            return {"eventAttributionSource": found}
        value = shared.get(found)
        if value is None:
            if len(shared) >= _MEMO_SIZE:
                shared.clear()
            value = shared[found] = {"eventAttributionSource": found}
        return value

    return metric_attribution


#: Property maps of up to this many entries are remembered once encoded, up to this many maps.
_MEMO_ITEMS, _MEMO_SIZE = 8, 4096


def _joined(found: Any) -> Any:
    """A catalog property that is a list: the `|`-separated string categorical fields take."""
    if type(found) is list:
        return "|".join(str(item) for item in found if item is not None) or None
    return found


def _joining(get: Getter) -> Getter:
    return lambda value: _joined(get(value))


def properties_getter(
    spread: Source | None, properties: tuple[tuple[str, Source], ...], catalog: bool = False
) -> Getter:
    """The properties as a JSON object string, or None when there are none.

    `catalog`: an item's, user's or action's properties: no keys are reserved there, and a list
    becomes a `|`-separated string, as categorical fields of a dataset take it.
    """
    get_map = getter(spread, None) if spread is not None else None
    named = tuple(
        (key, _joining(getter(source, None)) if catalog else getter(source, None))
        for key, source in properties
    )
    where = spread.describe() if spread is not None else ""

    seen: dict[tuple[tuple[Any, Any], ...], str] = {}  # maps of strings already encoded

    def encode(found: Any) -> str | None:
        if not found:
            return None
        if type(found) is dict and len(found) <= _MEMO_ITEMS:
            # The same few properties recur across records (device, page, channel): a map of
            # strings is encoded once. Only those are remembered (1, 1.0 and True are equal
            # keys but different JSON), so only a map of the very same strings finds one.
            try:
                encoded = seen.get(tuple(found.items()))
            except TypeError:  # an unhashable value: never remembered
                encoded = None
            if encoded is not None:
                return encoded
        if type(found) is not dict:
            if not isinstance(found, Mapping):
                raise Unmappable("type", f"properties: not a map at {where}")
            found = dict(found)
        reserved = () if catalog else check_property_keys(found)
        if reserved:  # checked here, on the map: validation then needn't parse the JSON back
            raise Unmappable(reserved[0].rule, reserved[0].message, Stage.VALIDATE)
        try:
            encoded = _encode_properties(found)
        except (TypeError, ValueError):
            reason = "properties: values must be strings, finite numbers or booleans"
            raise Unmappable("json", reason) from None
        if len(found) <= _MEMO_ITEMS and all(type(v) is str for v in found.values()):
            if len(seen) >= _MEMO_SIZE:
                seen.clear()
            seen[tuple(found.items())] = encoded
        return encoded

    if (
        get_map is not None
        and spread is not None
        and not named
        and not spread.convert
        and not catalog
    ):
        return lambda value: encode(get_map(value))  # a map of strings: the default mapping

    def build(value: Mapping[str, Any]) -> str | None:
        properties: dict[str, Any] = {}
        if get_map is not None:
            found = get_map(value)
            if found:
                if not isinstance(found, Mapping):
                    raise Unmappable("type", f"properties: not a map at {where}")
                properties = {k: v for k, v in found.items() if v is not None}
                if catalog:
                    properties = {k: _joined(v) for k, v in properties.items()}
        for key, get in named:
            found = get(value)
            if found is not None:
                properties[key] = found
        return encode(properties)

    return build
