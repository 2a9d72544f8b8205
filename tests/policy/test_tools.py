"""Which tool and tool-policy changes reduce authority and which expand it."""

from __future__ import annotations

from typing import Any

import pytest

from lockgate.policy.classify import Direction
from lockgate.policy.tools import classify_policy_change, classify_tool_change

BASE: dict[str, Any] = {"risk": "write", "description": "", "deny": [], "budget": None}
EVERYONE = {"id": "everyone", "clauses": []}
BUDGET = {"calls": 10, "window": 60, "per": "key"}


def tool(**fields: Any) -> dict[str, Any]:
    return {**BASE, **fields}


@pytest.mark.parametrize(
    ("before", "after", "policy", "direction"),
    [
        pytest.param(None, tool(), {}, Direction.EXPANSION, id="register"),
        pytest.param(tool(), None, {}, Direction.REDUCTION, id="remove"),
        pytest.param(tool(), tool(risk="irreversible"), {}, Direction.REDUCTION, id="raise-risk"),
        pytest.param(tool(), tool(risk="read"), {}, Direction.EXPANSION, id="lower-risk"),
        pytest.param(
            tool(risk="external"),
            tool(risk="irreversible"),
            {"full": {"irreversible": "allow"}, "approval_required": {"irreversible": "allow"}},
            Direction.EXPANSION,
            id="raise-risk-into-a-looser-override",
        ),
        pytest.param(tool(), tool(deny=[EVERYONE]), {}, Direction.REDUCTION, id="deny"),
        pytest.param(tool(deny=[EVERYONE]), tool(), {}, Direction.EXPANSION, id="lift-denial"),
        pytest.param(tool(), tool(budget=BUDGET), {}, Direction.REDUCTION, id="add-budget"),
        pytest.param(
            tool(budget=BUDGET),
            tool(budget={**BUDGET, "calls": 5}),
            {},
            Direction.REDUCTION,
            id="tighter-budget",
        ),
        pytest.param(
            tool(budget=BUDGET),
            tool(budget={**BUDGET, "per": "account"}),
            {},
            Direction.EXPANSION,
            id="budget-other-subject",
        ),
        pytest.param(tool(budget=BUDGET), tool(), {}, Direction.EXPANSION, id="drop-budget"),
        pytest.param(tool(), tool(description="x"), {}, Direction.NONE, id="description"),
    ],
)
def test_tool_changes(
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    policy: dict[str, Any],
    direction: Direction,
) -> None:
    assert classify_tool_change(before, after, policy).direction is direction


@pytest.mark.parametrize(
    ("before", "after", "direction"),
    [
        ({}, {"full": {"write": "approval_required"}}, Direction.REDUCTION),
        ({"full": {"write": "approval_required"}}, {}, Direction.EXPANSION),
        ({}, {"full": {"irreversible": {"high": "allow"}}}, Direction.EXPANSION),
        ({}, {"full": {"read": "allow"}}, Direction.NONE),
        ({"observe": {"read": "deny"}}, {"observe": {"read": "deny"}}, Direction.NONE),
    ],
)
def test_policy_changes(
    before: dict[str, Any], after: dict[str, Any], direction: Direction
) -> None:
    found = classify_policy_change(before, after)
    assert found.direction is direction
