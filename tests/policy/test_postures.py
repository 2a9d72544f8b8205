"""The posture table and the pure decision: apply, ask for approval, or refuse."""

from __future__ import annotations

import pytest

from lockgate.policy.classify import Direction
from lockgate.policy.postures import (
    DEFAULT_POSTURE,
    Outcome,
    PlanStep,
    decide,
    environment_class,
    normalize_posture,
    reason_required,
    runtime_approvers,
    strictest,
)

TABLE, _ = normalize_posture({})


@pytest.mark.parametrize(
    ("tier", "env_class", "approvals"),
    [
        ("low", "development", 0),
        ("low", "protected", 0),
        ("medium", "standard", 0),
        ("medium", "protected", 1),
        ("high", "development", 0),
        ("high", "standard", 1),
        ("high", "protected", 1),
        ("restricted", "development", 2),
        ("restricted", "protected", 2),
    ],
)
def test_default_postures_follow_the_risk_tier_table(
    tier: str, env_class: str, approvals: int
) -> None:
    verdict = decide(Direction.EXPANSION, scopes=[(tier, env_class)], posture=TABLE)
    assert verdict.approvals == approvals
    assert verdict.outcome is (Outcome.APPLY if approvals == 0 else Outcome.REQUEST)


@pytest.mark.parametrize("direction", [Direction.REDUCTION, Direction.NONE])
def test_reductions_never_wait_whatever_the_posture(direction: Direction) -> None:
    strict, _ = normalize_posture(
        {
            t: {"approvals": {c: "deny" for c in ("development", "standard", "protected")}}
            for t in DEFAULT_POSTURE
        }
    )
    verdict = decide(direction, scopes=[("restricted", "protected")], posture=strict)
    assert verdict.outcome is Outcome.APPLY


def test_the_strictest_scope_decides() -> None:
    verdict = decide(
        Direction.EXPANSION,
        scopes=[("low", "protected"), ("restricted", "standard")],
        posture=TABLE,
    )
    assert (verdict.outcome, verdict.approvals) == (Outcome.REQUEST, 2)
    assert verdict.rule == "posture.restricted.approvals.standard = 2"


def test_deny_refuses_naming_the_rule() -> None:
    table, problems = normalize_posture({"high": {"approvals": {"protected": "deny"}}})
    assert problems == []
    verdict = decide(Direction.EXPANSION, scopes=[("high", "protected")], posture=table)
    assert verdict.outcome is Outcome.REFUSE
    assert verdict.rule == "posture.high.approvals.protected = deny"


def test_a_partial_table_keeps_the_defaults_elsewhere() -> None:
    table, problems = normalize_posture({"medium": {"approvals": {"standard": 1}}})
    assert problems == []
    assert table["medium"]["approvals"] == {"development": 0, "standard": 1, "protected": 1}
    assert table["high"] == DEFAULT_POSTURE["high"]


def test_bad_tables_name_each_field() -> None:
    _, problems = normalize_posture(
        {
            "urgent": {},
            "high": {"approvals": {"staging": 1, "protected": 6}, "reason": "sometimes", "x": 1},
            "low": [],
        }
    )
    assert sorted(p.path for p in problems) == [
        "posture.high.approvals.protected",
        "posture.high.approvals.staging",
        "posture.high.reason",
        "posture.high.x",
        "posture.low",
        "posture.urgent",
    ]
    assert normalize_posture([])[1][0].path == "posture"
    assert normalize_posture({"low": {"approvals": {"standard": True}}})[1][0].path == (
        "posture.low.approvals.standard"
    )


def test_reasons_follow_the_posture() -> None:
    assert reason_required(TABLE, "high", "development")
    assert reason_required(TABLE, "medium", "protected")
    assert not reason_required(TABLE, "medium", "standard")
    assert not reason_required(TABLE, "low", None)


def test_environment_classes_and_tiers() -> None:
    assert environment_class(protected=True, development=True) == "protected"
    assert environment_class(protected=False, development=True) == "development"
    assert environment_class(protected=False, development=False) == "standard"
    assert strictest(["low", "high", "medium"]) == "high"
    assert strictest(["mystery"]) == "restricted"


@pytest.mark.parametrize(
    ("tier", "env_class", "approvers", "rule"),
    [
        ("low", "protected", 1, "posture.low.approvals.protected = 0 (a runtime approval "
         "always asks one person)"),
        ("medium", "protected", 1, "posture.medium.approvals.protected = 1"),
        ("high", "development", 1, "posture.high.approvals.development = 0 (a runtime "
         "approval always asks one person)"),
        ("restricted", "standard", 2, "posture.restricted.approvals.standard = 2"),
    ],
)  # fmt: skip
def test_runtime_approvers_follow_the_posture_and_ask_at_least_one_person(
    tier: str, env_class: str, approvers: int, rule: str
) -> None:
    assert runtime_approvers(TABLE, tier, env_class) == (approvers, rule)


def test_a_deny_posture_denies_every_runtime_request() -> None:
    table, problems = normalize_posture({"high": {"approvals": {"protected": "deny"}}})
    assert problems == []
    assert runtime_approvers(table, "high", "protected") == (
        0,
        "posture.high.approvals.protected = deny",
    )
    table, _ = normalize_posture({"high": {"approvals": {"protected": 3}}})
    assert runtime_approvers(table, "high", "protected")[0] == 3


def _step(**overrides: bool) -> PlanStep:
    values = {"approved": True, "next_stage": True, "matches": True} | overrides
    return PlanStep(plan=4, stage=2, **values)


def test_a_system_actor_applies_an_approved_plans_next_stage_whatever_the_posture() -> None:
    verdict = decide(
        Direction.EXPANSION,
        scopes=[("restricted", "protected")],
        posture=TABLE,
        system=True,
        plan_step=_step(),
    )
    assert verdict.outcome is Outcome.APPLY
    assert verdict.rule == "approved plan #4: stage 2"


@pytest.mark.parametrize(
    "step",
    [None, _step(approved=False), _step(next_stage=False), _step(matches=False)],
)
def test_a_system_actor_never_expands_anything_else(step: PlanStep | None) -> None:
    verdict = decide(
        Direction.EXPANSION, scopes=[("low", "development")], posture=TABLE, system=True,
        plan_step=step,
    )  # fmt: skip
    assert verdict.outcome is Outcome.REFUSE
    assert "system actors only reduce" in verdict.rule


def test_an_incident_refuses_even_a_plans_stage() -> None:
    verdict = decide(
        Direction.EXPANSION, scopes=[("low", "development")], posture=TABLE, system=True,
        plan_step=_step(), frozen_by=["#9"],
    )  # fmt: skip
    assert verdict.outcome is Outcome.REFUSE
    assert verdict.rule.startswith("incident #9")


def test_a_system_actor_reduces_at_once_and_a_person_ignores_plan_steps() -> None:
    reduce = decide(Direction.REDUCTION, scopes=[("high", "protected")], posture=TABLE, system=True)
    assert reduce.outcome is Outcome.APPLY
    person = decide(
        Direction.EXPANSION, scopes=[("high", "protected")], posture=TABLE, plan_step=_step()
    )
    assert person.outcome is Outcome.REQUEST
