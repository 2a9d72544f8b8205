"""The guardrail cycle against a real database: evaluate, act with evidence, advance."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from lockgate.control.base import Services, system_caller
from lockgate.control.configuration import flags as flag_use
from lockgate.control.configuration import snapshots
from lockgate.control.governance.gate import Deferred
from lockgate.control.guardrails import cycle
from lockgate.control.guardrails import definitions as guard_use
from lockgate.control.reversal import incidents
from lockgate.engine import decode
from lockgate.errors import InvalidInput, PolicyRefused
from lockgate.store.tables import audit_log
from tests.control.guardrails.helpers import ADMIN, add_summaries, environment_id, setup

PLAN = {
    "variation": "full",
    "stable": "off",
    "stages": [
        {"percent": 5, "min_hold": "10m", "min_sample": 1000},
        {"percent": 25, "min_hold": "10m", "min_sample": 1000},
        {"percent": 100},
    ],
}
ERRORS = {"metric": "error", "min_sample": 1000, "window": "1h", "action": "fallback"}


def _entries(services: Services, action: str) -> list[Any]:
    with services.view() as conn:
        return list(
            conn.execute(
                select(audit_log).where(audit_log.c.action == action).order_by(audit_log.c.seq)
            ).all()
        )


def _config(services: Services) -> dict[str, Any]:
    return flag_use.get_flag_config(services, ADMIN, "shop", "assistant", "prod")


def _plan(services: Services) -> dict[str, Any]:
    return guard_use.get_plan(services, ADMIN, "shop", "assistant", "prod")


def _start(services: Services, guardrail: dict[str, Any] | None = None) -> None:
    guard_use.put_guardrail(
        services, ADMIN, "shop", "assistant", "prod", "errors", guardrail or ERRORS
    )
    guard_use.put_plan(services, ADMIN, "shop", "assistant", "prod", PLAN)
    cycle.run_cycle(services)  # the first stage: covered by the approved plan


def test_the_first_stage_is_applied_by_the_system_actor_as_the_approved_plan_allows(
    services: Services,
) -> None:
    setup(services)
    _start(services)
    config = _config(services)
    assert config["on"] is True
    assert config["default"]["split"][0] == {"variation": "full", "weight": 5000}
    assert _plan(services)["stage"] == 0
    [configured] = _entries(services, "flag:configured")
    assert configured.actor_id == cycle.ACTOR
    assert configured.evidence["policy"]["rule"].startswith("approved plan #")
    [advanced] = _entries(services, "rollout_plan:advanced")
    assert advanced.after["stage"] == 0


def test_a_healthy_run_advances_stage_by_stage_after_each_hold(services: Services) -> None:
    clock = setup(services)
    _start(services)
    add_summaries(services, clock, rows={"full": (1000, 20), "off": (19_000, 380)})
    cycle.run_cycle(services)
    assert _plan(services)["stage"] == 0  # held: ten minutes not over yet
    assert "held 0s" in " ".join(_plan(services)["last_step"]["reasons"])
    clock.advance(minutes=11)
    add_summaries(services, clock, rows={"full": (500, 10), "off": (9500, 190)})
    cycle.run_cycle(services)
    plan = _plan(services)
    assert plan["stage"] == 1, plan["last_step"]
    [_, second] = _entries(services, "rollout_plan:advanced")
    evidence = second.evidence
    assert evidence["guardrails"]["errors"]["state"] == "healthy"
    assert evidence["rollout"]["stage_exposures"] >= 1000
    assert evidence["rollout"]["srm_p"] is not None


def test_a_regression_fires_serves_the_fallback_and_pauses_with_evidence(
    services: Services,
) -> None:
    clock = setup(services)
    _start(services)
    add_summaries(services, clock, rows={"full": (2000, 80), "off": (38_000, 760)})  # 4 % v 2 %
    clock.advance(minutes=1)
    add_summaries(services, clock, rows={"full": (2000, 80), "off": (38_000, 760)})
    cycle.run_cycle(services)
    [breach] = _entries(services, "guardrail:breached")
    assert breach.actor_id == cycle.ACTOR
    evidence = breach.evidence
    assert evidence["state"] == "breached"
    assert evidence["samples"] == {"full": 4000, "off": 76_000}
    assert evidence["interval"][0] > 0
    assert evidence["test"]["name"].startswith("asymptotic confidence sequence")
    assert evidence["guardrail"]["action"] == "fallback"
    assert _config(services)["default"]["split"] == [
        {"variation": "full", "weight": 0},
        {"variation": "off", "weight": 100_000},
    ]
    plan = _plan(services)
    assert plan["status"] == "paused"
    assert plan["stage"] == -1
    fallback = _entries(services, "flag:configured")[-1]
    assert fallback.evidence["policy"]["rule"] == "reduction-immediate"
    assert fallback.evidence["samples"] == evidence["samples"]
    cycle.run_cycle(services)  # fires once per breach, not once per cycle
    assert len(_entries(services, "guardrail:breached")) == 1


def test_too_small_a_sample_never_fires(services: Services) -> None:
    clock = setup(services)
    _start(services)
    add_summaries(services, clock, rows={"full": (300, 60), "off": (300, 3)})  # 20 % v 1 %
    cycle.run_cycle(services)
    state = guard_use.get_guardrail(services, ADMIN, "shop", "assistant", "prod", "errors")
    assert state["evaluation"]["state"] == "insufficient_data"
    assert _entries(services, "guardrail:breached") == []
    assert _plan(services)["status"] == "active"


@pytest.mark.parametrize(
    ("action", "expected"),
    [("kill", "killed"), ("pause", "paused"), ("require_approval", "held")],
)
def test_other_actions(services: Services, action: str, expected: str) -> None:
    clock = setup(services)
    _start(services, ERRORS | {"action": action})
    add_summaries(services, clock, rows={"full": (5000, 250), "off": (95_000, 1900)})
    cycle.run_cycle(services)
    plan = _plan(services)
    if expected == "killed":
        assert _config(services)["killed"] is True
        assert plan["status"] == "paused"
    elif expected == "paused":
        assert plan["status"] == "paused"
        assert plan["stage"] == 0
    else:
        assert plan["require_approval"] is True
        assert len(_entries(services, "rollout_plan:held")) == 1


def test_a_cohort_cap_excludes_only_that_account_until_the_window_resets(
    services: Services,
) -> None:
    clock = setup(services)
    serve_full = {"on": True, "default": {"variation": "full"}}
    flag_use.update_flag_config(services, ADMIN, "shop", "assistant", "prod", serve_full, None)
    guard_use.put_guardrail(
        services, ADMIN, "shop", "assistant", "prod", "llm_cost_per_account",
        {"metric": "llm_cost", "aggregation": "sum", "comparison": "absolute",
         "threshold": 50, "per": "account", "window": "1d", "action": "fallback"},
    )  # fmt: skip
    add_summaries(services, clock, metric="llm_cost", cohort="acme", rows={"full": (0, 30)},
                  values={"full": 2.0})  # fmt: skip
    add_summaries(services, clock, metric="llm_cost", cohort="globex", rows={"full": (0, 10)},
                  values={"full": 2.0})  # fmt: skip
    cycle.run_cycle(services)
    exclusions = _config(services).get("exclusions") or []
    assert [x["clauses"] for x in exclusions] == [
        [{"attribute": "account", "op": "in", "values": ["acme"]}]
    ]
    [breach] = _entries(services, "guardrail:breached")
    assert breach.evidence["cohort"] == {"attribute": "account", "value": "acme", "total": 60.0}
    cycle.run_cycle(services)
    assert len(_config(services)["exclusions"]) == 1  # once per window
    clock.advance(hours=12)  # the day ends at 00:00 UTC
    cycle.run_cycle(services)
    assert not _config(services).get("exclusions")
    [lifted] = _entries(services, "flag:exclusion_lifted")
    assert lifted.actor_id == cycle.ACTOR
    assert lifted.evidence["policy"]["rule"] == "time-boxed automatic exclusion expired"


def test_never_advance_during_an_incident(services: Services) -> None:
    clock = setup(services)
    _start(services)
    incidents.start_incident(services, ADMIN, "shop", "prod", {}, "outage")
    clock.advance(minutes=11)
    add_summaries(services, clock, rows={"full": (1500, 30), "off": (28_500, 570)})
    cycle.run_cycle(services)
    plan = _plan(services)
    assert plan["stage"] == 0
    assert any("incident" in r for r in plan["last_step"]["reasons"])


def test_a_broken_split_holds_the_advance(services: Services) -> None:
    clock = setup(services)
    _start(services)
    clock.advance(minutes=11)
    add_summaries(services, clock, rows={"full": (3000, 60), "off": (27_000, 540)})  # 10 % at 5 %
    cycle.run_cycle(services)
    plan = _plan(services)
    assert plan["stage"] == 0
    assert any("sample-ratio mismatch" in r for r in plan["last_step"]["reasons"])


def test_the_system_actor_cannot_expand_outside_an_approved_plan(services: Services) -> None:
    setup(services)
    robot = system_caller(cycle.ACTOR, automatic=True)
    with pytest.raises(PolicyRefused) as refused:
        flag_use.update_flag_config(
            services, robot, "shop", "assistant", "prod",
            {"on": True, "default": {"variation": "full"}}, None, "widen",
        )  # fmt: skip
    assert "system actors only reduce" in refused.value.detail
    guard_use.put_plan(services, ADMIN, "shop", "assistant", "prod", PLAN)
    stage = flag_use.RolloutStep(plan=1, stage=0, approved=True, next_stage=True,
                                 config={"default": {"variation": "full"}})  # fmt: skip
    with pytest.raises(PolicyRefused):  # the change is not the stage's configuration
        flag_use.update_flag_config(
            services, robot, "shop", "assistant", "prod",
            {"on": True, "default": {"variation": "full"}, "bucket_by": "account"}, None,
            "widen", rollout=stage,
        )  # fmt: skip


def test_a_plan_on_a_high_risk_behavior_waits_for_its_approval(services: Services) -> None:
    setup(services, tier="high")
    answer = guard_use.put_plan(services, ADMIN, "shop", "assistant", "prod", PLAN, reason="go")
    assert isinstance(answer, Deferred)
    assert answer.status == 202
    cycle.run_cycle(services)
    assert _config(services)["on"] is False  # no plan yet: nothing advances


def test_guardrails_bind_their_metrics_in_the_snapshot(services: Services) -> None:
    setup(services)
    env = environment_id(services)
    with services.view() as conn:
        assert "metrics" not in snapshots.build_snapshot(conn, env)
    guard_use.put_guardrail(services, ADMIN, "shop", "assistant", "prod", "errors", ERRORS)
    guard_use.put_guardrail(
        services, ADMIN, "shop", "assistant", "prod", "cost",
        {"metric": "llm_cost", "aggregation": "sum", "comparison": "absolute",
         "threshold": 5, "per": "account", "window": "1d"},
    )  # fmt: skip
    with services.view() as conn:
        document = snapshots.build_snapshot(conn, env)
    assert document["metrics"] == {
        "error": {"behaviors": ["assistant"], "cohort": None},
        "llm_cost": {"behaviors": ["assistant"], "cohort": "account"},
    }
    assert decode(document).metrics["llm_cost"].cohort == "account"
    with pytest.raises(InvalidInput):  # one cohort attribute per metric
        guard_use.put_guardrail(
            services, ADMIN, "shop", "assistant", "prod", "cost2",
            {"metric": "llm_cost", "aggregation": "sum", "comparison": "absolute",
             "threshold": 5, "per": "region"},
        )  # fmt: skip


def test_deny_tool_denies_the_tool_at_once_with_the_evidence(services: Services) -> None:
    from lockgate.control.agents import tools as tool_use

    clock = setup(services)
    tool_use.register_tool(services, ADMIN, "shop", {"key": "refund", "risk": "write"}, "agent")
    serve_full = {"on": True, "default": {"variation": "full"}}
    flag_use.update_flag_config(services, ADMIN, "shop", "assistant", "prod", serve_full, None)
    guard_use.put_guardrail(
        services, ADMIN, "shop", "assistant", "prod", "refund-failures",
        {"metric": "refund_failed", "aggregation": "rate", "comparison": "absolute",
         "threshold": 0.2, "min_sample": 100, "window": "1h", "action": "deny_tool",
         "tool": "refund"},
    )  # fmt: skip
    add_summaries(services, clock, metric="refund_failed", rows={"full": (400, 200)})
    cycle.run_cycle(services)
    tool = tool_use.get_tool(services, ADMIN, "shop", "refund")
    assert tool["deny"] == [
        {
            "id": "guardrail-refund-failures-tool",
            "clauses": [],
            "description": "guardrail 'refund-failures' on 'assistant' in 'prod'",
        }
    ]
    [denied] = _entries(services, "tool:denied")
    assert denied.actor_id == cycle.ACTOR
    assert denied.refs == {"guardrail": "refund-failures"}
    assert denied.evidence["policy"]["rule"] == "reduction-immediate"
    assert denied.evidence["guardrail"]["action"] == "deny_tool"
    assert denied.evidence["state"] == "breached"
    assert _config(services)["on"] is True  # the behavior itself is untouched
    with services.view() as conn:
        document = snapshots.build_snapshot(conn, environment_id(services))
    assert decode(document).tools["refund"].deny[0].id == "guardrail-refund-failures-tool"
    cycle.run_cycle(services)  # once per breach
    assert len(_entries(services, "tool:denied")) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"action": "deny_tool"}, "tool"),
        ({"action": "kill", "tool": "refund"}, "tool"),
    ],
)
def test_deny_tool_needs_its_tool(services: Services, body: dict[str, Any], field: str) -> None:
    setup(services)
    with pytest.raises(InvalidInput) as caught:
        guard_use.put_guardrail(services, ADMIN, "shop", "assistant", "prod", "g", ERRORS | body)
    assert field in [p.field for p in caught.value.problems]
