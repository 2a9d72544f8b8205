"""Cleanup rules: the article's words and the contract's fields, and when each is met."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lockgate.lifecycle import (
    CleanupRule,
    RuleError,
    check_rule,
    rule_from_contract,
    rule_from_text,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.mark.parametrize(
    ("words", "kind", "days", "windows"),
    [
        pytest.param(
            "remove temporary rollout flag after full release and two healthy review windows",
            "full_release", 0, 2, id="article",
        ),
        pytest.param("archive 30 days after 100 %", "full_release", 30, 0, id="days-after-100"),
        pytest.param("30 days after 100%", "full_release", 30, 0, id="no-space"),
        pytest.param("remove when no evaluation for 14 days", "no_evaluation", 14, 0, id="quiet"),
        pytest.param("After full release and 3 healthy review windows", "full_release", 0, 3,
                     id="digits-and-case"),
    ],
)  # fmt: skip
def test_the_articles_words_map_to_rules(words: str, kind: str, days: int, windows: int) -> None:
    rule = rule_from_text(words)
    assert rule is not None
    assert (rule.kind, rule.days, rule.healthy_review_windows) == (kind, days, windows)
    assert rule.description == words


def test_words_that_say_no_rule_give_none() -> None:
    assert rule_from_text("clean this up some day") is None


def test_a_date_in_words() -> None:
    rule = rule_from_text("remove after 2027-03-01")
    assert rule is not None
    assert rule.kind == "date"
    assert rule.date == datetime(2027, 3, 1, tzinfo=UTC)


def test_contract_fields_win_over_words() -> None:
    stored = {
        "description": "30 days after 100 %",
        "after": "full_release",
        "healthy_review_windows": 2,
        "review_window": "3d",
    }
    rule = rule_from_contract(stored)
    assert rule == CleanupRule("full_release", 0, 2, timedelta(days=3), None, "30 days after 100 %")


@pytest.mark.parametrize(
    ("stored", "field"),
    [
        ({"after": "someday"}, "after"),
        ({"after": "full_release", "days": -1}, "days"),
        ({"after": "full_release", "review_window": "seven"}, "review_window"),
        ({"after": "date"}, "date"),
        ({"after": "date", "date": "soon"}, "date"),
        ({"after": "no_evaluation"}, "days"),
    ],
)
def test_bad_fields_are_named(stored: dict[str, object], field: str) -> None:
    with pytest.raises(RuleError) as caught:
        rule_from_contract(stored)
    assert caught.value.field == field


def _release(rule: CleanupRule, now: datetime, **facts: object) -> tuple[bool, str]:
    base: dict[str, object] = {
        "created_at": T0,
        "released_since": T0,
        "last_breach": None,
        "breached_now": False,
        "last_evaluated": None,
    }
    result = check_rule(rule, now=now, **(base | facts))  # type: ignore[arg-type]
    return result.met, result.reason


def test_two_healthy_windows_after_full_release() -> None:
    rule = CleanupRule("full_release", healthy_review_windows=2)
    assert _release(rule, T0 + 13 * DAY) == (False, "1 of 2 healthy review windows")
    assert _release(rule, T0 + 14 * DAY)[0] is True
    assert _release(rule, T0 + 30 * DAY, released_since=None) == (
        False,
        "not fully released in every production environment",
    )


def test_a_breach_starts_the_windows_again_and_a_current_breach_blocks() -> None:
    rule = CleanupRule("full_release", healthy_review_windows=2)
    assert _release(rule, T0 + 20 * DAY, last_breach=T0 + 10 * DAY) == (
        False,
        "1 of 2 healthy review windows",
    )
    assert _release(rule, T0 + 24 * DAY, last_breach=T0 + 10 * DAY)[0] is True
    assert _release(rule, T0 + 60 * DAY, breached_now=True) == (False, "a guardrail is breached")


def test_days_after_full_release() -> None:
    rule = CleanupRule("full_release", days=30)
    assert _release(rule, T0 + 29 * DAY) == (False, "released 29.0 of 30 days")
    assert _release(rule, T0 + 30 * DAY)[0] is True


def test_no_evaluation_counts_from_the_last_evaluation_or_creation() -> None:
    rule = CleanupRule("no_evaluation", days=14)
    assert _release(rule, T0 + 13 * DAY, released_since=None)[0] is False
    assert _release(rule, T0 + 14 * DAY, released_since=None)[0] is True
    recent = T0 + 10 * DAY
    assert _release(rule, T0 + 20 * DAY, last_evaluated=recent)[0] is False
    assert _release(rule, T0 + 24 * DAY, last_evaluated=recent)[0] is True


def test_a_date_rule() -> None:
    rule = CleanupRule("date", date=T0 + 5 * DAY)
    assert _release(rule, T0 + 4 * DAY)[0] is False
    assert _release(rule, T0 + 5 * DAY)[0] is True
