"""How the dashboard words a configuration (pure functions, table-driven)."""

from __future__ import annotations

from typing import Any

import pytest

from lockgate.dashboard.present import (
    WHOLE,
    exposure,
    guardrail_health,
    percent_of,
    split_for,
)

SPLIT = {"split": [{"variation": "full", "weight": 25_000}, {"variation": "off", "weight": 75_000}]}


@pytest.mark.parametrize(
    ("config", "label", "tone", "detail"),
    [
        pytest.param(None, "not configured", "muted", "", id="none"),
        pytest.param(
            {"on": True, "killed": True, "off_variation": "off"},
            "killed",
            "danger",
            "everyone gets off",
            id="killed-wins",
        ),
        pytest.param(
            {"on": True, "incidents": ["3"], "off_variation": "fallback"},
            "incident",
            "danger",
            "everyone gets fallback",
            id="incident",
        ),
        pytest.param({"on": False, "off_variation": "off"}, "off", "muted", "serves off", id="off"),
        pytest.param({"on": True, "default": {"variation": "full"}}, "full", "ok", "", id="fixed"),
        pytest.param(
            {
                "on": True,
                "default": SPLIT,
                "rules": [{}, {}],
                "targets": [{"values": ["a"]}],
                "exclusions": [{}],
            },
            "full 25% · off 75%",
            "warn",
            "2 rules, 1 target, 1 rollback",
            id="split-with-extras",
        ),
    ],
)
def test_exposure(config: dict[str, Any] | None, label: str, tone: str, detail: str) -> None:
    badge = exposure(config)
    assert (badge.label, badge.tone, badge.detail) == (label, tone, detail)


@pytest.mark.parametrize(
    ("percent", "serve"),
    [
        (0, {"variation": "off"}),
        (100, {"variation": "full"}),
        (
            12.5,
            {
                "split": [
                    {"variation": "full", "weight": 12_500},
                    {"variation": "off", "weight": 87_500},
                ]
            },
        ),
        (
            0.001,
            {"split": [{"variation": "full", "weight": 1}, {"variation": "off", "weight": 99_999}]},
        ),
    ],
)
def test_split_for_sums_to_the_whole(percent: float, serve: dict[str, Any]) -> None:
    assert split_for("full", percent, "off") == serve
    if "split" in serve:
        assert sum(s["weight"] for s in serve["split"]) == WHOLE
    assert percent_of({"default": serve}, "full") == percent


def test_percent_of_a_fixed_serve() -> None:
    assert percent_of({"default": {"variation": "full"}}, "full") == 100.0
    assert percent_of({"default": {"variation": "off"}}, "full") == 0.0
    assert percent_of(None, "full") == 0.0


@pytest.mark.parametrize(
    ("states", "label", "tone"),
    [
        (None, "none", "muted"),
        ({"healthy": 2}, "2 healthy", "ok"),
        ({"healthy": 1, "insufficient_data": 2}, "1 healthy, 2 waiting for data", "warn"),
        ({"healthy": 1, "breached": 1}, "1 breached", "danger"),
    ],
)
def test_guardrail_health(states: dict[str, int] | None, label: str, tone: str) -> None:
    badge = guardrail_health(states)
    assert (badge.label, badge.tone) == (label, tone)
