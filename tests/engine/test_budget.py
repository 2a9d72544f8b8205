"""Bounds on remote-evaluation work: context shape and the operator-work estimate."""

from __future__ import annotations

from typing import Any

import pytest

from lockgate.engine import decode
from lockgate.engine.budget import (
    ContextLimits,
    LimitExceededError,
    check_context,
    combine,
    weights,
    work,
)
from tests.engine.factories import clause, rule, snapshot_doc, string_flag

LIMITS = ContextLimits()


@pytest.mark.parametrize(
    ("context", "field", "message"),
    [
        pytest.param(
            {f"a{i}": 1 for i in range(129)}, "context", "has 129 attributes", id="attributes"
        ),
        pytest.param({"groups": ["g"] * 101}, "context.groups", "has 101 elements", id="list"),
        pytest.param(
            {f"l{i}": ["x"] * 100 for i in range(11)},
            "context",
            "has 1100 list elements in all",
            id="elements-in-all",
        ),
        pytest.param({"email": "x" * 4097}, "context.email", "4097 characters", id="string"),
        pytest.param(
            {"groups": ["ok", "y" * 4097]}, "context.groups[1]", "4097 characters", id="element"
        ),
    ],
)
def test_a_context_over_a_limit_is_refused_naming_the_field(
    context: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(LimitExceededError) as caught:
        check_context(context, LIMITS)
    assert caught.value.field == field
    assert message in caught.value.message


def test_a_context_at_every_limit_is_accepted() -> None:
    context: dict[str, Any] = {f"l{i}": ["x" * 4096] * 100 for i in range(10)}
    context |= {f"a{i}": "y" for i in range(118)}
    check_context(context, LIMITS)  # raises if refused
    assert len(context) == LIMITS.attributes


def _snapshot() -> Any:
    regex = clause("groups", "matches", "^team-[a-z]+$", "^ops$")
    scan = clause("email", "contains", "@a", "@b", "@c")
    member = clause("", "segment_match", "staff")
    segments = {
        "staff": {
            "key": "staff",
            "version": 1,
            "rules": [{"id": "s", "clauses": [clause("plan", "in", "pro", "team")]}],
        }
    }
    flags = {
        "uses-regex": string_flag("uses-regex", rules=[rule("r", regex, scan)]),
        "uses-segment": string_flag(
            "uses-segment",
            rules=[rule("r", member)],
            prerequisites=[{"flag": "uses-regex", "variation": "a"}],
            client_visible=True,
        ),
    }
    return decode(snapshot_doc(flags, segments))


def test_weights_follow_prerequisites_and_segments() -> None:
    per_flag = weights(_snapshot())
    assert per_flag["uses-regex"] == {"groups": (0, 2), "email": (3, 0)}
    assert per_flag["uses-segment"] == {
        "key": (1, 0),
        "plan": (1, 0),
        "groups": (0, 2),
        "email": (3, 0),
    }


def test_work_grows_with_list_length_and_quadratically_with_regex_input() -> None:
    total = combine(weights(_snapshot()), ["uses-regex"])
    assert work(total, {}) == (5, "context.email")
    units, field = work(total, {"groups": ["x" * 320] * 10, "email": "a@b"})
    assert (units, field) == (2 * 10 * (1 + 20**2) + 3, "context.groups")
    # Longer than the regex input limit: never matched, so it costs one unit per element.
    assert work(total, {"groups": ["x" * 1025] * 10})[0] == 2 * 10 + 3
