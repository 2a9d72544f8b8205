"""Incident scopes: which behaviors an incident covers, and bad scopes named by field."""

from __future__ import annotations

import pytest

from lockgate.policy.incidents import IncidentScope, parse_scope


@pytest.mark.parametrize(
    ("scope", "tags", "tier", "owner", "covered"),
    [
        ({}, [], "low", None, True),
        ({"tags": ["pay", "ui"]}, ["ui"], "low", None, True),
        ({"tags": ["pay"]}, ["ui"], "low", None, False),
        ({"min_risk": "high"}, [], "high", None, True),
        ({"min_risk": "high"}, [], "restricted", None, True),
        ({"min_risk": "high"}, [], "medium", None, False),
        ({"min_risk": "restricted"}, [], "unknown-tier", None, True),  # unknown ranks highest
        ({"owner": "team-a"}, [], "low", "team-a", True),
        ({"owner": "team-a"}, [], "low", "team-b", False),
        ({"tags": ["pay"], "min_risk": "medium", "owner": "a"}, ["pay"], "high", "a", True),
        ({"tags": ["pay"], "min_risk": "medium", "owner": "a"}, ["pay"], "low", "a", False),
    ],
)
def test_a_scope_covers_behaviors_matching_every_condition(
    scope: dict[str, object], tags: list[str], tier: str, owner: str | None, covered: bool
) -> None:
    parsed, problems = parse_scope(scope)
    assert problems == []
    assert parsed.covers(tags=tags, risk_tier=tier, owner=owner) is covered


@pytest.mark.parametrize(
    ("scope", "field"),
    [
        ({"tags": "pay"}, "tags"),
        ({"tags": ["pay", ""]}, "tags[1]"),
        ({"tags": [3]}, "tags[0]"),
        ({"min_risk": "severe"}, "min_risk"),
        ({"owner": "  "}, "owner"),
    ],
)
def test_a_bad_scope_names_its_field(scope: dict[str, object], field: str) -> None:
    _, problems = parse_scope(scope)
    assert [p.field for p in problems] == [field]


def test_a_scope_reads_back_as_it_was_given_and_describes_itself() -> None:
    scope = IncidentScope(("pay", "ui"), "high", "team-a")
    assert parse_scope(scope.document()) == (scope, [])
    assert scope.describe() == "tag pay or ui, risk high or above, owner team-a"
    assert IncidentScope().describe() == "every behavior"
