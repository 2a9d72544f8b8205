"""Stages derived from configuration history, evaluations and marks — a whole life."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lockgate.lifecycle import (
    BehaviorFacts,
    CleanupRule,
    ConfigVersion,
    EnvironmentFacts,
    Stage,
    derive,
    full_release_since,
    serves_everyone,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)
OFF: dict[str, Any] = {"on": False, "off_variation": "off", "default": {"variation": "off"}}


def split(percent: int) -> dict[str, Any]:
    weight = percent * 1000
    parts = [
        {"variation": "full", "weight": weight},
        {"variation": "off", "weight": 100_000 - weight},
    ]
    return {
        "on": True,
        "off_variation": "off",
        "default": {"split": [p for p in parts if p["weight"]]},
    }


def rule(variation: str) -> dict[str, Any]:
    return {"id": "r", "clauses": [], "serve": {"variation": variation}}


@pytest.mark.parametrize(
    ("config", "everyone"),
    [
        pytest.param(OFF, "off", id="off"),
        pytest.param(split(5), None, id="five-percent"),
        pytest.param(split(100), "full", id="hundred-percent-split"),
        pytest.param({**split(100), "killed": True}, "off", id="killed"),
        pytest.param({**split(100), "targets": [{"variation": "off", "values": ["a"]}]}, None,
                     id="a-target"),
        pytest.param({**split(100), "rules": [rule("full")]}, "full", id="rule-same-variation"),
        pytest.param({**split(100), "rules": [rule("off")]}, None, id="rule-other-variation"),
    ],
)  # fmt: skip
def test_what_a_configuration_serves_everyone(config: dict[str, Any], everyone: str | None) -> None:
    assert serves_everyone(config) == everyone


def test_full_release_since_is_the_start_of_the_latest_run() -> None:
    history = [
        ConfigVersion(T0, split(100)),
        ConfigVersion(T0 + DAY, split(50)),
        ConfigVersion(T0 + 2 * DAY, split(100)),
        ConfigVersion(T0 + 3 * DAY, {**split(100), "bucket_by": "account"}),
    ]
    assert full_release_since(history) == T0 + 2 * DAY
    assert full_release_since(history[:2]) is None


def _facts(prod: list[ConfigVersion], **more: Any) -> BehaviorFacts:
    dev = EnvironmentFacts("staging", False, [ConfigVersion(T0, split(100))], T0 + DAY)
    env = EnvironmentFacts("production", True, prod, more.pop("last_evaluated", None),
                           last_breach=more.pop("last_breach", None))  # fmt: skip
    return BehaviorFacts("checkout", T0, environments=[dev, env], **more)


def test_a_behavior_through_its_whole_life() -> None:
    """rolling out → full → two healthy windows → cleanup due → archived, clock passed in."""
    rule = CleanupRule("full_release", healthy_review_windows=2)
    untouched = EnvironmentFacts("production", True, [ConfigVersion(T0, OFF)])
    never = BehaviorFacts("checkout", T0, rule=rule, environments=[untouched])
    assert derive(never, T0).stage is Stage.DEFINED
    history = [ConfigVersion(T0, OFF)]
    assert derive(_facts(history, rule=rule), T0 + DAY).stage is Stage.IN_DEVELOPMENT
    history.append(ConfigVersion(T0 + 2 * DAY, split(5)))
    rolling = derive(_facts(history, rule=rule), T0 + 3 * DAY)
    assert rolling.stage is Stage.ROLLING_OUT
    assert rolling.rule_check is not None
    assert rolling.rule_check.met is False
    history.append(ConfigVersion(T0 + 4 * DAY, split(100)))
    released = derive(_facts(history, rule=rule), T0 + 10 * DAY)
    assert (released.stage, released.since) == (Stage.RELEASED, T0 + 4 * DAY)
    assert released.rule_check is not None
    assert released.rule_check.met is False
    assert released.rule_check.evidence["healthy_review_windows"] == 0
    due_at = T0 + 18 * DAY
    ready = derive(_facts(history, rule=rule), due_at)
    assert ready.rule_check is not None
    assert ready.rule_check.met is True
    assert ready.rule_check.evidence["healthy_review_windows"] == 2
    marked = derive(_facts(history, rule=rule, cleanup_due_at=due_at), due_at)
    assert (marked.stage, marked.since) == (Stage.CLEANUP_DUE, due_at)
    gone = derive(_facts(history, rule=rule, cleanup_due_at=due_at, archived=True,
                         archived_at=due_at + DAY), due_at + DAY)  # fmt: skip
    assert (gone.stage, gone.since) == (Stage.ARCHIVED, due_at + DAY)


def test_a_breach_during_release_delays_the_rule() -> None:
    rule = CleanupRule("full_release", healthy_review_windows=2)
    history = [ConfigVersion(T0, split(100))]
    facts = _facts(history, rule=rule, last_breach=T0 + 10 * DAY)
    check = derive(facts, T0 + 20 * DAY).rule_check
    assert check is not None
    assert (check.met, check.evidence["healthy_review_windows"]) == (False, 1)


def test_a_permanent_behavior_has_no_rule_check() -> None:
    rule = CleanupRule("full_release")
    facts = _facts([ConfigVersion(T0, split(100))], rule=rule, lifecycle="permanent")
    lifecycle = derive(facts, T0 + 100 * DAY)
    assert (lifecycle.stage, lifecycle.rule_check) == (Stage.RELEASED, None)


def test_released_needs_every_production_environment() -> None:
    second = EnvironmentFacts("production-eu", True, [ConfigVersion(T0, split(20))])
    facts = _facts([ConfigVersion(T0, split(100))])
    both = BehaviorFacts("checkout", T0, environments=[*facts.environments, second])
    assert derive(both, T0 + DAY).stage is Stage.ROLLING_OUT
