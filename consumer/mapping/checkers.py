"""botocore shapes compiled into checker closures, once; a check then walks only the values.

A checker gets the value, its parent's path and its own key, and appends a `Violation` for each
broken rule; it builds its path only to report one. Messages name the path and the rule, never
the value. `screen` adds a fast yes for the usual valid value, so the closures run only to say
what is wrong with one that is not.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from consumer.mapping.screen import Screen, compile_screen

_MAX_NAME_IN_MESSAGE = 64


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule; safe to log because it never carries the offending value."""

    path: str
    rule: str
    message: str


Out = list[Violation]
Checker = Callable[[Any, str, "str | int", Out], None]


class Compiler:
    """Turns botocore shapes into checker closures; one checker per (shape, extras) pair."""

    def __init__(self, extras: Mapping[tuple[str, str], Checker]) -> None:
        self.extras = dict(extras)
        self.used_extras: set[tuple[str, str]] = set()
        self._memo: dict[str, Checker] = {}
        self._members: dict[str, dict[str, Checker]] = {}  # structure -> its members' checkers

    def compile(self, shape: Any) -> Checker:
        name: str = shape.name
        checker = self._memo.get(name)
        if checker is None:
            checker = self._build(shape)
            self._memo[name] = checker
        return checker

    def _build(self, shape: Any) -> Checker:
        type_name: str = shape.type_name
        meta: Mapping[str, Any] = shape.metadata
        if type_name == "structure":
            return self._structure(shape)
        if type_name == "list":
            return _list_checker(self.compile(shape.member), meta.get("min"), meta.get("max"))
        if type_name == "string":
            return _string_checker(meta, shape.enum)
        if type_name in ("float", "double", "integer", "long"):
            integral = type_name in ("integer", "long")
            return _number_checker(integral, meta.get("min"), meta.get("max"))
        if type_name == "boolean":
            return _boolean_checker
        if type_name == "timestamp":
            return _timestamp_checker
        raise NotImplementedError(f"shape type {type_name!r} ({shape.name}) is not supported")

    def _structure(self, shape: Any) -> Checker:
        members: dict[str, Checker] = {}
        for member_name, member_shape in shape.members.items():
            base = self.compile(member_shape)
            extra = self.extras.get((shape.name, member_name))
            if extra is not None:
                self.used_extras.add((shape.name, member_name))
                base = _chain(base, extra)
            members[member_name] = base
        self._members[shape.name] = members
        return _structure_checker(members, tuple(shape.required_members))

    def screen(self, shape: Any) -> Screen:
        """True only for a value of the structure `shape` in which its checker finds nothing:
        generated code (`screen.py`), so the checkers run only to say what is wrong."""
        return compile_screen(shape, self.extras, _ecma_anchors)


def _chain(base: Checker, extra: Checker) -> Checker:
    """Run a documented rule only once the model's own checks passed (so its type is known)."""

    def check(value: Any, parent: str, key: str | int, out: Out) -> None:
        before = len(out)
        base(value, parent, key, out)
        if len(out) == before:
            extra(value, parent, key, out)

    return check


def path_of(parent: str, key: str | int) -> str:
    if type(key) is int:
        return f"{parent}[{key}]"
    if not parent:
        return str(key)
    return f"{parent}.{key}" if key != "" else parent


def _label(path: str) -> str:
    return path or "request"


def _safe_name(key: object) -> str:
    """Member names are not user data, but an unknown key could be anything: bound it."""
    text = key if isinstance(key, str) else repr(type(key))
    return text if len(text) <= _MAX_NAME_IN_MESSAGE else text[:_MAX_NAME_IN_MESSAGE] + "..."


def _structure_checker(members: Mapping[str, Checker], required: tuple[str, ...]) -> Checker:
    def check(value: Any, parent: str, key: str | int, out: Out) -> None:
        path = path_of(parent, key)
        if type(value) is not dict and not isinstance(value, Mapping):
            out.append(Violation(path, "type", f"{_label(path)}: must be an object"))
            return
        for name, item in value.items():
            checker = members.get(name)
            if checker is not None:
                if item is not None:
                    checker(item, path, name, out)
                elif name not in required:
                    sub = path_of(path, name)
                    msg = f"{sub}: must not be null (omit the member instead)"
                    out.append(Violation(sub, "type", msg))
            else:
                sub = path_of(path, _safe_name(name))
                out.append(Violation(sub, "unknown_member", f"{sub}: is not a known member"))
        for name in required:
            if value.get(name) is None:
                sub = path_of(path, name)
                out.append(Violation(sub, "required", f"{sub}: is required"))

    return check


def _list_checker(element: Checker, min_items: int | None, max_items: int | None) -> Checker:
    def check(value: Any, parent: str, key: str | int, out: Out) -> None:
        path = path_of(parent, key)
        if not isinstance(value, (list, tuple)):
            out.append(Violation(path, "type", f"{_label(path)}: must be a list"))
            return
        count = len(value)
        if min_items is not None and count < min_items:
            msg = f"{_label(path)}: must have at least {min_items} item(s)"
            out.append(Violation(path, "min_items", msg))
        if max_items is not None and count > max_items:
            msg = f"{_label(path)}: must have at most {max_items} item(s)"
            out.append(Violation(path, "max_items", msg))
        for index, item in enumerate(value):
            if item is not None:
                element(item, path, index, out)
            else:
                sub = path_of(path, index)
                out.append(Violation(sub, "type", f"{sub}: must not be null"))

    return check


def _string_checker(meta: Mapping[str, Any], enum: list[str]) -> Checker:
    min_len: int | None = meta.get("min")
    max_len: int | None = meta.get("max")
    source: str | None = meta.get("pattern")
    pattern = re.compile(_ecma_anchors(source)) if source is not None else None
    allowed = frozenset(enum)

    def check(value: Any, parent: str, key: str | int, out: Out) -> None:
        if not isinstance(value, str):
            path = path_of(parent, key)
            out.append(Violation(path, "type", f"{path}: must be a string"))
            return
        length = len(value)
        if (
            (min_len is None or length >= min_len)
            and (max_len is None or length <= max_len)
            and (pattern is None or pattern.search(value) is not None)
            and (not allowed or value in allowed)
        ):
            return
        path = path_of(parent, key)
        if min_len is not None and length < min_len:
            msg = f"{path}: must be at least {min_len} character(s) long"
            out.append(Violation(path, "min_length", msg))
        if max_len is not None and length > max_len:
            msg = f"{path}: must be at most {max_len} character(s) long"
            out.append(Violation(path, "max_length", msg))
        if pattern is not None and pattern.search(value) is None:
            out.append(Violation(path, "pattern", f"{path}: must match the pattern {source}"))
        if allowed and value not in allowed:
            out.append(Violation(path, "enum", f"{path}: must be one of {sorted(allowed)}"))

    return check


def _ecma_anchors(pattern: str) -> str:
    r"""ECMAScript patterns: `$` ends the string, in Python it also matches before `\n`."""
    chars: list[str] = []
    escaped = in_class = False
    for char in pattern:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "[":
            in_class = True
        elif char == "]":
            in_class = False
        elif char == "$" and not in_class:
            chars.append(r"\Z")
            continue
        chars.append(char)
    return "".join(chars)


def _is_number(value: Any) -> bool:
    """A finite int or float, bool excluded; ints are never converted, so size cannot overflow."""
    kind = type(value)
    if kind is float:
        return math.isfinite(value)
    if kind is int:
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, int) and not isinstance(value, bool)


def _number_checker(integral: bool, low: float | None, high: float | None) -> Checker:
    kind = "an integer" if integral else "a finite number"

    def check(value: Any, parent: str, key: str | int, out: Out) -> None:
        if (
            _is_number(value)
            and (not integral or isinstance(value, int))
            and (low is None or value >= low)
            and (high is None or value <= high)
        ):
            return
        path = path_of(parent, key)
        if not _is_number(value) or (integral and not isinstance(value, int)):
            out.append(Violation(path, "type", f"{path}: must be {kind}"))
            return
        if low is not None and value < low:
            out.append(Violation(path, "min_value", f"{path}: must be at least {low}"))
        if high is not None and value > high:
            out.append(Violation(path, "max_value", f"{path}: must be at most {high}"))

    return check


def _boolean_checker(value: Any, parent: str, key: str | int, out: Out) -> None:
    if not isinstance(value, bool):
        path = path_of(parent, key)
        out.append(Violation(path, "type", f"{path}: must be a boolean"))


def _timestamp_checker(value: Any, parent: str, key: str | int, out: Out) -> None:
    if isinstance(value, datetime):
        return
    if not _is_number(value):
        path = path_of(parent, key)
        msg = f"{path}: must be epoch seconds (number) or a datetime"
        out.append(Violation(path, "type", msg))
