"""What the guardrail cycle tells subscribers: ``guardrail.breached`` with its numbers, and
``automatic.action`` for each change it makes, queued in the same transaction."""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy import select

from lockgate.control.base import Services
from lockgate.control.evidence import webhooks
from lockgate.control.guardrails import cycle
from lockgate.control.guardrails import definitions as guard_use
from lockgate.store.tables import webhook_deliveries
from tests.control.guardrails.helpers import ADMIN, add_summaries, setup

PLAN = {"variation": "full", "stable": "off", "stages": [{"percent": 5}, {"percent": 100}]}
ERRORS = {"metric": "error", "min_sample": 1000, "window": "1h", "action": "fallback"}


def _subscribe(services: Services, *types: str) -> None:
    services.webhooks = dataclasses.replace(services.webhooks, allow_private_targets=True)
    webhooks.create_webhook(
        services, ADMIN, "shop",
        {"key": "ops", "url": "http://127.0.0.1:9/hook", "event_types": list(types)},
    )  # fmt: skip


def _queued(services: Services) -> list[tuple[str, dict[str, Any]]]:
    with services.view() as conn:
        rows = conn.execute(
            select(webhook_deliveries.c.event_type, webhook_deliveries.c.data).order_by(
                webhook_deliveries.c.id
            )
        ).all()
    return [(r.event_type, dict(r.data or {})) for r in rows]


def test_a_breach_and_the_actions_it_takes_reach_subscribers(services: Services) -> None:
    clock = setup(services)
    _subscribe(services, "guardrail.breached", "automatic.action")
    guard_use.put_guardrail(services, ADMIN, "shop", "assistant", "prod", "errors", ERRORS)
    guard_use.put_plan(services, ADMIN, "shop", "assistant", "prod", PLAN)
    cycle.run_cycle(services)  # the first stage, applied by the system: an automatic action
    first = _queued(services)
    assert [t for t, _ in first] == ["automatic.action", "automatic.action"]
    assert {d["action"] for _, d in first} == {"flag:configured", "rollout_plan:advanced"}
    assert all(d["actor"] == cycle.ACTOR for _, d in first)
    add_summaries(services, clock, rows={"full": (4000, 160), "off": (76_000, 1520)})  # 4 % v 2 %
    cycle.run_cycle(services)
    later = _queued(services)[len(first) :]
    types = [t for t, _ in later]
    assert types[0] == "guardrail.breached"
    breach = later[0][1]
    assert (breach["project"], breach["environment"], breach["behavior"]) == (
        "shop", "prod", "assistant",
    )  # fmt: skip
    assert breach["state"] == "breached"
    assert breach["samples"] == {"full": 4000, "off": 76_000}
    assert breach["guardrail"]["key"] == "errors"
    actions = [d for t, d in later if t == "automatic.action"]
    assert {d["action"] for d in actions} >= {"flag:configured", "rollout_plan:paused"}
    fallback = next(d for d in actions if d["action"] == "flag:configured")
    assert fallback["evidence"]["samples"] == breach["samples"]  # what it acted on
    assert fallback["audit_id"]


def test_nothing_is_queued_without_a_subscriber_for_the_type(services: Services) -> None:
    clock = setup(services)
    _subscribe(services, "change_request.created")
    guard_use.put_guardrail(services, ADMIN, "shop", "assistant", "prod", "errors", ERRORS)
    guard_use.put_plan(services, ADMIN, "shop", "assistant", "prod", PLAN)
    add_summaries(services, clock, rows={"full": (4000, 160), "off": (76_000, 1520)})
    cycle.run_cycle(services)
    assert _queued(services) == []
