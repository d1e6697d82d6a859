"""The generated screens: for any value of any of the five operations' requests, a yes only when
the checkers find nothing; and a yes for the valid requests that make up the traffic."""

from __future__ import annotations

from datetime import UTC
from typing import Any

import botocore.session
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumer.mapping.checkers import Compiler
from consumer.mapping.validation import _EXTRAS, SERVICE_NAME, validate_put_events
from consumer.records import OPERATIONS
from tests.mapping.test_validation import NOW, events

_MODEL = botocore.session.get_session().get_service_model(SERVICE_NAME)


def _rarely(broken: st.SearchStrategy[Any], valid: st.SearchStrategy[Any]) -> Any:
    """Mostly `valid`: a screen must get past most members for a wrong yes to show."""
    return st.integers(0, 7).flatmap(lambda roll: broken if roll == 0 else valid)


_WRONG = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=3)


def values(shape: Any) -> st.SearchStrategy[Any]:
    """Values of `shape`, nearly all valid, some breaking one of its rules or of another type."""
    meta, kind = shape.metadata, shape.type_name
    low, high = meta.get("min"), meta.get("max")
    outside = [n for n in (None if low is None else low - 1, high and high + 1) if n and n >= 0]
    if kind == "structure":
        members = {name: values(member) for name, member in shape.members.items()}
        required = set(shape.required_members)
        valid = st.fixed_dictionaries(
            {k: v for k, v in members.items() if k in required},
            optional={k: v for k, v in members.items() if k not in required},
        )
        unknown = valid.map(lambda value: {**value, "unknownMember": "x"})
        nulls = valid.flatmap(
            lambda value: st.sampled_from(sorted(members)).map(lambda k: {**value, k: None})
        )
        return _rarely(_WRONG | unknown | nulls, valid)
    if kind == "list":
        element = values(shape.member)
        valid = st.lists(element, min_size=low or 0, max_size=min(high or 4, 4))
        sizes = st.sampled_from(outside) if outside else st.nothing()
        too_many = sizes.flatmap(lambda n: st.lists(element, min_size=n, max_size=n))
        return _rarely(_WRONG | too_many | valid.map(tuple), valid)
    if kind == "string":
        if shape.enum:
            valid = st.sampled_from(shape.enum)
        elif meta.get("pattern"):
            valid = st.from_regex(meta["pattern"], fullmatch=True).filter(
                lambda text: (low or 0) <= len(text) <= (high or len(text))
            )
        else:
            valid = st.text(min_size=low or 0, max_size=min(high or 8, 8))
            if high is not None and high <= 300:
                valid |= st.text(min_size=high, max_size=high)
        sizes = st.sampled_from(outside) if outside else st.nothing()
        return _rarely(_WRONG | sizes.map(lambda n: "x" * n), valid)
    if kind == "timestamp":
        now = NOW  # fixed: hypothesis wants the same bounds every run
        valid = st.floats(0, now) | st.integers(0, int(now)) | st.datetimes(timezones=st.just(UTC))
        broken = st.sampled_from([-1, now + 86_400 * 2, float("inf"), float("nan"), "2026"])
        return _rarely(broken | _WRONG, valid)
    return _rarely(_WRONG, st.floats(allow_nan=False, allow_infinity=False) | st.integers())


def _compiled(operation: str) -> tuple[Any, Any, Any]:
    shape = _MODEL.operation_model(operation).input_shape
    compiler = Compiler(_EXTRAS)
    return shape, compiler.compile(shape), compiler.screen(shape)


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_screen_says_yes_only_when_the_checkers_find_nothing(
    operation: str, data: st.DataObject
) -> None:
    shape, check, screen = _compiled(operation)
    value = data.draw(values(shape))
    found: list[Any] = []
    check(value, "", "", found)
    if screen(value):
        assert found == []


@settings(max_examples=100)
@given(st.lists(events(), min_size=1, max_size=10), st.text(min_size=1, max_size=256))
def test_valid_requests_pass_the_request_screen(event_list: list[Any], session: str) -> None:
    _shape, _check, screen = _compiled("PutEvents")
    request = {"trackingId": "t", "sessionId": session, "userId": "u", "eventList": event_list}
    assert screen(request)
    assert validate_put_events(request) == []


def test_a_request_the_screen_refuses_is_reported_by_the_checkers() -> None:
    request = {"trackingId": "t", "sessionId": "", "eventList": [{"eventType": "x", "sentAt": 1}]}
    assert [(v.path, v.rule) for v in validate_put_events(request)] == [("sessionId", "min_length")]
