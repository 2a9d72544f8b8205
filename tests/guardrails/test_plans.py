"""The staged rollout's state machine: it advances only when everything says so."""

from __future__ import annotations

from lockgate.guardrails.evaluate import BREACHED, HEALTHY, INSUFFICIENT, GuardrailState
from lockgate.guardrails.model import read_plan
from lockgate.guardrails.plans import (
    ACTIVE,
    PAUSED,
    STAGE_RULE,
    PlanState,
    expected_share,
    next_step,
    stage_config,
)

PLAN = read_plan(
    {"flag": "f", "environment": "p", "variation": "full", "stable": "off",
     "stages": [{"percent": 5, "min_hold": 600, "min_sample": 1000},
                {"percent": 25, "min_hold": 600}, {"percent": 100, "approval": True}]}
)  # fmt: skip
GOOD = {"errors": GuardrailState(HEALTHY, "ok")}


def _state(stage: int = 0, status: str = ACTIVE, **more: object) -> PlanState:
    return PlanState(stage, status, 1000.0, **more)  # type: ignore[arg-type]


def test_advances_when_held_sampled_healthy_and_the_split_holds() -> None:
    step = next_step(PLAN, _state(), now=1700.0, guardrails=GOOD, stage_exposures=1200, srm_p=0.4)
    assert step.advance, step.reasons
    assert step.checks["guardrails"] == {"errors": HEALTHY}


def test_every_reason_to_hold_is_named() -> None:
    step = next_step(
        PLAN, _state(), now=1100.0,
        guardrails={"errors": GuardrailState(INSUFFICIENT, "few"),
                    "latency": GuardrailState(BREACHED, "bad")},
        incidents=["#3"], stage_exposures=10, srm_p=1e-6,
    )  # fmt: skip
    assert not step.advance
    text = " | ".join(step.reasons)
    for expected in ("incident #3", "'latency' is breached", "'errors' is not healthy",
                     "held 100s", "10 exposures", "sample-ratio mismatch"):  # fmt: skip
        assert expected in text


def test_paused_or_gated_plans_never_advance_by_themselves() -> None:
    assert not next_step(PLAN, _state(status=PAUSED), now=9e9, guardrails=GOOD,
                         stage_exposures=10**6).advance  # fmt: skip
    assert not next_step(PLAN, _state(require_approval=True), now=9e9, guardrails=GOOD,
                         stage_exposures=10**6).advance  # fmt: skip
    gated = next_step(PLAN, _state(stage=1), now=9e9, guardrails=GOOD, stage_exposures=10**6)
    assert not gated.advance
    assert "approval gate" in gated.reasons[0]


def test_the_last_stage_is_the_end() -> None:
    assert not next_step(PLAN, _state(stage=2), now=9e9, guardrails=GOOD).advance


def test_stage_configuration_splits_and_keeps_other_rules() -> None:
    current = {"rules": [{"id": "beta", "clauses": [], "serve": {"variation": "full"}}]}
    five = stage_config(current, PLAN.stages[0], "full", "off")
    assert five["default"] == {
        "split": [{"variation": "full", "weight": 5000}, {"variation": "off", "weight": 95000}]
    }
    assert five["rules"] == current["rules"]
    assert stage_config(current, PLAN.stages[2], "full", "off")["default"] == {"variation": "full"}
    assert stage_config(current, None, "full", "off")["default"] == {"variation": "off"}


def test_an_audience_stage_is_a_rule_and_has_no_expected_share() -> None:
    plan = read_plan(
        {"flag": "f", "environment": "p", "variation": "full",
         "stages": [{"percent": 100, "clauses": [{"attribute": "internal", "op": "in",
                                                   "values": [True]}]}]}
    )  # fmt: skip
    config = stage_config({}, plan.stages[0], "full", "off")
    assert config["rules"][0]["id"] == STAGE_RULE
    assert config["default"] == {"variation": "off"}
    assert expected_share(plan.stages[0]) is None
    assert expected_share(PLAN.stages[0]) == 0.05


def test_the_fallback_of_a_split_stays_a_split_at_zero_percent() -> None:
    # A fixed variation also reaches contexts a split cannot bucket: keeping the split (at
    # 0 %) lets the change be classified, context by context, as serving no one more.
    current = {"default": stage_config({}, PLAN.stages[1], "full", "off")["default"]}
    back = stage_config(current, None, "full", "off")
    assert back["default"]["split"] == [
        {"variation": "full", "weight": 0},
        {"variation": "off", "weight": 100_000},
    ]
