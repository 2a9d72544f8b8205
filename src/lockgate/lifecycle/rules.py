"""Machine-readable cleanup rules, and whether one is met.

A rule comes from a contract's ``cleanup_rule``: its fields (``after``, ``days``,
``healthy_review_windows``, ``review_window``, ``date``) or, when it is free text, the
article's words, which map to the same rule:

=========================================================  ====================================
words                                                      rule
=========================================================  ====================================
"after full release and two healthy review windows"        full_release, 2 windows (7 d each)
"30 days after 100 %" / "30 days after full release"       full_release, days 30
"no evaluation for 14 days"                                no_evaluation, days 14
"after 2027-03-01"                                         date 2027-03-01
=========================================================  ====================================

A *healthy review window* is a whole ``review_window`` (7 days unless the rule says) of
full release in which no guardrail of the behavior breached in a production environment;
a breach starts the count again.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = [
    "DEFAULT_REVIEW_WINDOW",
    "RULE_KINDS",
    "CleanupRule",
    "RuleCheck",
    "RuleError",
    "check_rule",
    "parse_duration",
    "rule_from_contract",
    "rule_from_text",
]

FULL_RELEASE = "full_release"
NO_EVALUATION = "no_evaluation"
DATE = "date"
RULE_KINDS = (FULL_RELEASE, NO_EVALUATION, DATE)
DEFAULT_REVIEW_WINDOW = timedelta(days=7)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_NUMBERS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "a": 1, "an": 1,
}  # fmt: skip
_COUNT = r"(\d+|one|two|three|four|five|six|seven|eight|nine|ten|an?)"
_WORDS = (
    (re.compile(rf"after full release and {_COUNT} healthy review windows?"), "windows"),
    (re.compile(r"(\d+) ?days? after (?:100 ?%|full release|release)"), "days"),
    (re.compile(r"no evaluations? (?:for|in) (\d+) ?days?"), "quiet"),
    (re.compile(r"after (\d{4}-\d{2}-\d{2})"), "date"),
    (re.compile(r"after full release"), "release"),
)


class RuleError(ValueError):
    """A cleanup rule that cannot be read; ``field`` names the part at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class CleanupRule:
    kind: str
    days: int = 0
    healthy_review_windows: int = 0
    review_window: timedelta = DEFAULT_REVIEW_WINDOW
    date: datetime | None = None
    description: str = ""

    def document(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "days": self.days,
            "healthy_review_windows": self.healthy_review_windows,
            "review_window_seconds": int(self.review_window.total_seconds()),
            "date": None if self.date is None else self.date.date().isoformat(),
            "description": self.description,
            "summary": self.summary(),
        }

    def summary(self) -> str:
        if self.kind == DATE and self.date is not None:
            return f"on {self.date.date().isoformat()}"
        if self.kind == NO_EVALUATION:
            return f"no evaluation for {self.days} days"
        parts = ["after full release"]
        if self.days:
            parts.append(f"{self.days} days at 100 %")
        if self.healthy_review_windows:
            days = self.review_window.total_seconds() / 86_400
            parts.append(f"{self.healthy_review_windows} healthy review windows of {days:g} days")
        return " and ".join(parts)


@dataclass(frozen=True, slots=True)
class RuleCheck:
    """Whether a rule is met at ``now``, why, and the facts it looked at."""

    met: bool
    reason: str
    evidence: Mapping[str, Any]


def parse_duration(text: str) -> timedelta:
    """``"7d"``, ``"12h"``, ``"2w"`` → a duration (a whole number and one unit, s|m|h|d|w)."""
    match = re.fullmatch(r"([1-9][0-9]{0,5})([smhdw])", text.strip())
    if match is None:
        raise RuleError("review_window", f"{text!r} is not a duration like 7d, 12h or 2w")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def _whole(field: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise RuleError(field, "must be a whole number, 0 or more")
    return value


def _date(text: Any) -> datetime:
    try:
        return datetime.fromisoformat(str(text)).replace(tzinfo=UTC)
    except ValueError:
        raise RuleError("date", f"{text!r} is not a date (YYYY-MM-DD)") from None


def rule_from_text(text: str) -> CleanupRule | None:
    """The rule the article's words say, or ``None`` when the text says no rule we know."""
    said = " ".join(text.lower().replace("%", " %").replace("  ", " ").split())
    said = said.replace(" %", "%").replace("100%", "100 %")
    for pattern, what in _WORDS:
        match = pattern.search(said)
        if match is None:
            continue
        if what == "windows":
            count = match.group(1)
            windows = int(count) if count.isdigit() else _NUMBERS[count]
            return CleanupRule(FULL_RELEASE, healthy_review_windows=windows, description=text)
        if what == "days":
            return CleanupRule(FULL_RELEASE, days=int(match.group(1)), description=text)
        if what == "quiet":
            return CleanupRule(NO_EVALUATION, days=int(match.group(1)), description=text)
        if what == "date":
            return CleanupRule(DATE, date=_date(match.group(1)), description=text)
        return CleanupRule(FULL_RELEASE, description=text)
    return None


def rule_from_contract(stored: Mapping[str, Any] | None) -> CleanupRule | None:
    """The rule of a contract's stored ``cleanup_rule`` (its fields, else its words).

    Raises :class:`RuleError` for fields that cannot be read; ``None`` when there is no
    rule, or only words that say none we know.
    """
    if not stored:
        return None
    description = str(stored.get("description") or "")
    after = stored.get("after")
    if after is None:
        return rule_from_text(description) if description else None
    if after not in RULE_KINDS:
        raise RuleError("after", f"unknown value {after!r}; one of {', '.join(RULE_KINDS)}")
    days = _whole("days", stored.get("days") or 0)
    windows = _whole("healthy_review_windows", stored.get("healthy_review_windows") or 0)
    window = stored.get("review_window")
    length = DEFAULT_REVIEW_WINDOW if window is None else parse_duration(str(window))
    if after == DATE:
        if stored.get("date") is None:
            raise RuleError("date", "required when after is date")
        return CleanupRule(DATE, date=_date(stored["date"]), description=description)
    if after == NO_EVALUATION and days == 0:
        raise RuleError("days", "required (1 or more) when after is no_evaluation")
    return CleanupRule(str(after), days, windows, length, None, description)


def check_rule(
    rule: CleanupRule,
    *,
    now: datetime,
    created_at: datetime,
    released_since: datetime | None,
    last_breach: datetime | None,
    breached_now: bool,
    last_evaluated: datetime | None,
) -> RuleCheck:
    """Whether ``rule`` is met at ``now``.

    ``released_since``: when the behavior's full release began in every production
    environment (``None``: not fully released); ``last_breach``: its latest guardrail breach
    in production; ``last_evaluated``: its latest evaluation in any environment.
    """
    if rule.kind == DATE:
        assert rule.date is not None
        met = now >= rule.date
        return RuleCheck(met, f"{'past' if met else 'before'} {rule.date.date()}", {})
    if rule.kind == NO_EVALUATION:
        return _check_quiet(rule, now, created_at, last_evaluated)
    return _check_release(rule, now, released_since, last_breach, breached_now)


def _check_quiet(
    rule: CleanupRule, now: datetime, created_at: datetime, last_evaluated: datetime | None
) -> RuleCheck:
    quiet_since = last_evaluated or created_at
    quiet_days = (now - quiet_since).total_seconds() / 86_400
    evidence = {
        "last_evaluated": None if last_evaluated is None else last_evaluated.isoformat(),
        "quiet_days": round(quiet_days, 2),
        "days": rule.days,
    }
    if quiet_days >= rule.days:
        return RuleCheck(True, f"no evaluation for {int(quiet_days)} days", evidence)
    return RuleCheck(False, f"evaluated {quiet_days:.1f} days ago", evidence)


def _check_release(
    rule: CleanupRule,
    now: datetime,
    released_since: datetime | None,
    last_breach: datetime | None,
    breached_now: bool,
) -> RuleCheck:
    if released_since is None:
        return RuleCheck(False, "not fully released in every production environment", {})
    released_days = (now - released_since).total_seconds() / 86_400
    healthy_from = max(released_since, last_breach) if last_breach else released_since
    windows = int((now - healthy_from) / rule.review_window)
    evidence = {
        "released_since": released_since.isoformat(),
        "released_days": round(released_days, 2),
        "healthy_review_windows": 0 if breached_now else windows,
        "review_window_seconds": int(rule.review_window.total_seconds()),
        "last_breach": None if last_breach is None else last_breach.isoformat(),
    }
    if breached_now:
        return RuleCheck(False, "a guardrail is breached", evidence)
    if released_days < rule.days:
        return RuleCheck(False, f"released {released_days:.1f} of {rule.days} days", evidence)
    if windows < rule.healthy_review_windows:
        return RuleCheck(
            False, f"{windows} of {rule.healthy_review_windows} healthy review windows", evidence
        )
    return RuleCheck(True, f"fully released; {rule.summary()}", evidence)
