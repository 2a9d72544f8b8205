"""Stale detection on synthetic decision logs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from lockgate.lifecycle import BehaviorFacts, ConfigVersion, EnvironmentFacts, find_stale

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)
FULL: dict[str, Any] = {"on": True, "off_variation": "off", "default": {"variation": "full"}}
HALF: dict[str, Any] = {
    "on": True,
    "off_variation": "off",
    "default": {
        "split": [{"variation": "full", "weight": 50_000}, {"variation": "off", "weight": 50_000}]
    },
}


def _behavior(*envs: EnvironmentFacts, kind: str | None = "ui_path", **more: Any) -> BehaviorFacts:
    return BehaviorFacts("checkout", T0, behavior_kind=kind, environments=envs, **more)


def test_no_evaluations_for_n_days_per_environment() -> None:
    quiet = EnvironmentFacts("staging", False, [ConfigVersion(T0, HALF)], T0 + 2 * DAY)
    busy = EnvironmentFacts("production", True, [ConfigVersion(T0, HALF)], T0 + 19 * DAY,
                            {"full": 40, "off": 60})  # fmt: skip
    found = find_stale(_behavior(quiet, busy), T0 + 20 * DAY, days=14)
    assert [(f.environment, f.kind, int(f.days)) for f in found] == [
        ("staging", "no_evaluations", 18)
    ]


def test_never_evaluated_counts_from_creation() -> None:
    env = EnvironmentFacts("staging", False, [ConfigVersion(T0, HALF)])
    assert find_stale(_behavior(env), T0 + 13 * DAY, days=14) == []
    found = find_stale(_behavior(env), T0 + 14 * DAY, days=14)
    assert [(f.kind, f.detail) for f in found] == [
        ("no_evaluations", "never evaluated for 14 days")
    ]


def test_one_variation_to_everyone_for_n_days() -> None:
    history = [ConfigVersion(T0, HALF), ConfigVersion(T0 + 5 * DAY, FULL)]
    env = EnvironmentFacts("production", True, history, T0 + 25 * DAY, {"full": 900})
    assert find_stale(_behavior(env), T0 + 18 * DAY, days=14) == []
    found = find_stale(_behavior(env), T0 + 26 * DAY, days=14)
    assert [(f.kind, int(f.days)) for f in found] == [("one_variation", 21)]


def test_a_split_serving_two_variations_is_not_stale() -> None:
    env = EnvironmentFacts("production", True, [ConfigVersion(T0, HALF)], T0 + 25 * DAY,
                           {"full": 10, "off": 12})  # fmt: skip
    assert find_stale(_behavior(env), T0 + 26 * DAY, days=14) == []


def test_kinds_have_their_own_lifetimes_and_permanent_ones_never_go_stale() -> None:
    env = EnvironmentFacts("production", True, [ConfigVersion(T0, HALF)], T0 + 39 * DAY,
                           {"full": 1, "off": 1})  # fmt: skip
    ui = find_stale(_behavior(env, kind="ui_path"), T0 + 40 * DAY)
    assert [(f.kind, f.environment) for f in ui] == [("past_lifetime", None)]
    assert find_stale(_behavior(env, kind="integration"), T0 + 40 * DAY) == []
    assert find_stale(_behavior(env, lifecycle="permanent"), T0 + 400 * DAY) == []
