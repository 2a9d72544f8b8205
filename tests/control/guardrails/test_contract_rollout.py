"""Done means: a staged rollout with guardrails from a contract, advanced while healthy and
pulled back by itself on a regression — the numbers of each step in the audit log."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from lockgate.control.base import Services
from lockgate.control.configuration import contracts as contract_use
from lockgate.control.configuration import flags as flag_use
from lockgate.control.guardrails import cycle
from lockgate.control.guardrails import definitions as guard_use
from lockgate.store.tables import audit_log
from tests.control.guardrails.helpers import ADMIN, Clock, add_summaries, environment_id

CONTRACT = """
ai_generated_software_control:
  behavior: "Generated ticket summaries"
  key: summary-bot
  kind: model_route
  owner: support-platform
  risk_level: low
  default_state: "off"
  allowed_modes: ["off", fallback, full]
  rollback_action: {description: "serve the hand-written summary", variation: fallback}
  guardrails:
    - metric: error
      aggregation: rate
      comparison: regression
      threshold: 0
      min_sample: 1000
      window: 1h
      action: fallback
  rollout_stages:
    - {audience: everyone, mode: full, percent: 5, min_hold: 10m, min_sample: 1000}
    - {audience: everyone, mode: full, percent: 50, min_hold: 10m}
    - {audience: everyone, mode: full}
  environments:
    prod: {state: everyone, mode: fallback}
"""


def _setup(services: Services) -> Clock:
    from lockgate.control.configuration import projects as project_use

    clock = Clock()
    services.clock = clock
    project_use.create_project(services, ADMIN, "shop", "Shop")
    project_use.create_environment(services, ADMIN, "shop", "prod")
    return clock


def _entries(services: Services, action: str) -> list[Any]:
    with services.view() as conn:
        return list(
            conn.execute(
                select(audit_log).where(audit_log.c.action == action).order_by(audit_log.c.seq)
            ).all()
        )


def _plan(services: Services) -> dict[str, Any]:
    return guard_use.get_plan(services, ADMIN, "shop", "summary-bot", "prod")


def test_a_contract_rollout_advances_while_healthy_and_pulls_back_on_regression(
    services: Services,
) -> None:
    clock = _setup(services)
    applied = contract_use.apply_contract(services, ADMIN, "shop", CONTRACT, "summary.yaml")
    outcomes = {(s["step"], s.get("environment")): s["outcome"] for s in applied["steps"]}
    assert outcomes["guardrail", "prod"] == "applied"
    assert outcomes["rollout_plan", "prod"] == "applied"
    assert environment_id(services)
    cycle.run_cycle(services)
    assert _plan(services)["stage"] == 0
    # Healthy at 5 %: equal error rates, the hold passes, the next stage follows.
    add_summaries(services, clock, flag="summary-bot",
                  rows={"full": (1000, 20), "fallback": (19_000, 380)})  # fmt: skip
    clock.advance(minutes=11)
    add_summaries(services, clock, flag="summary-bot",
                  rows={"full": (200, 4), "fallback": (3800, 76)})  # fmt: skip
    cycle.run_cycle(services)
    assert _plan(services)["stage"] == 1
    config = flag_use.get_flag_config(services, ADMIN, "shop", "summary-bot", "prod")
    assert config["default"]["split"][0] == {"variation": "full", "weight": 50_000}
    # Applying the contract again leaves the plan's exposure alone.
    again = contract_use.apply_contract(services, ADMIN, "shop", CONTRACT, "summary.yaml")
    environment = next(s for s in again["steps"] if s["step"] == "environment")
    assert environment["managed_by"] == "rollout_plan"
    # The generated path regresses at 50 %: pulled back by itself, with the numbers.
    clock.advance(minutes=2)
    add_summaries(services, clock, flag="summary-bot",
                  rows={"full": (6000, 360), "fallback": (6000, 120)})  # fmt: skip
    cycle.run_cycle(services)
    plan = _plan(services)
    assert (plan["status"], plan["stage"]) == ("paused", -1)
    config = flag_use.get_flag_config(services, ADMIN, "shop", "summary-bot", "prod")
    assert config["default"]["split"] == [  # nobody gets the generated variation
        {"variation": "full", "weight": 0},
        {"variation": "fallback", "weight": 100_000},
    ]
    [breach] = _entries(services, "guardrail:breached")
    assert breach.evidence["interval"][0] > 0
    assert breach.evidence["samples"]["full"] >= 1000
    advances = _entries(services, "rollout_plan:advanced")
    assert [a.after["stage"] for a in advances] == [0, 1]
    assert all(a.actor_id == cycle.ACTOR for a in advances)
    assert advances[1].evidence["guardrails"]["error-rate"]["state"] == "healthy"


def test_contract_plan_lists_the_guardrail_and_rollout_steps(services: Services) -> None:
    _setup(services)
    fresh = contract_use.plan_contract(services, ADMIN, "shop", CONTRACT, "summary.yaml")
    steps = {(s["step"], s.get("environment")): s["outcome"] for s in fresh["steps"]}
    assert steps["guardrail", "prod"] == "apply"
    assert steps["rollout_plan", "prod"] == "apply"
    contract_use.apply_contract(services, ADMIN, "shop", CONTRACT, "summary.yaml")
    again = contract_use.plan_contract(services, ADMIN, "shop", CONTRACT, "summary.yaml")
    steps = {(s["step"], s.get("environment")): s["outcome"] for s in again["steps"]}
    assert steps["guardrail", "prod"] == "unchanged"
    assert steps["rollout_plan", "prod"] == "unchanged"
    changed = CONTRACT.replace("percent: 50,", "percent: 40,")
    planned = contract_use.plan_contract(services, ADMIN, "shop", changed, "summary.yaml")
    step = next(s for s in planned["steps"] if s["step"] == "rollout_plan")
    assert step["outcome"] == "apply"  # low risk: a new plan applies directly
    assert (
        guard_use.get_plan(services, ADMIN, "shop", "summary-bot", "prod")["stages"][1]["percent"]
        == 50
    )  # planning changed nothing
