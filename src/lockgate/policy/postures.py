"""Postures: what a change needs, decided by a pure function of data.

A project's *posture table* says, per risk tier and environment class, how many approvals
a direct expansion of exposure or authority needs (``0`` applies at once, ``"deny"``
refuses it outright), and when a stated reason is required. :func:`decide` turns a
classified change, the behavior's tier, the environment's class, the table and the caller
into one :class:`Verdict`: apply now, open a change request, or refuse — naming the rule.

Reductions never wait: a change that provably serves nobody more applies at once for
anyone who may edit the environment. There is no bypass for expansions (ADR 0008).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from lockgate.policy.classify import Direction

__all__ = [
    "DEFAULT_POSTURE",
    "ENVIRONMENT_CLASSES",
    "MAX_APPROVALS",
    "REASON_RULES",
    "RISK_TIERS",
    "Outcome",
    "PlanStep",
    "PostureProblem",
    "Verdict",
    "decide",
    "environment_class",
    "normalize_posture",
    "runtime_approvers",
    "strictest",
]

RISK_TIERS = ("low", "medium", "high", "restricted")
ENVIRONMENT_CLASSES = ("development", "standard", "protected")
REASON_RULES = ("never", "protected", "always")
MAX_APPROVALS = 5
DENY = "deny"

DEFAULT_POSTURE: dict[str, dict[str, Any]] = {
    "low": {
        "approvals": {"development": 0, "standard": 0, "protected": 0},
        "reason": "protected",
    },
    "medium": {
        "approvals": {"development": 0, "standard": 0, "protected": 1},
        "reason": "protected",
    },
    "high": {
        "approvals": {"development": 0, "standard": 1, "protected": 1},
        "reason": "always",
    },
    "restricted": {
        "approvals": {"development": 2, "standard": 2, "protected": 2},
        "reason": "always",
    },
}
"""The defaults, from the risk-tier table: low direct; medium one approval in protected
environments; high one approval outside development and a reason always; restricted
serves only ``off`` until two approvals say otherwise, and every change needs a reason."""

POSTURE_CHANGE_APPROVALS = 1
"""Changing the posture table itself is an administrative change that needs one approval."""


class Outcome(StrEnum):
    APPLY = "apply"
    REQUEST = "request_approval"
    REFUSE = "refuse"


@dataclass(frozen=True, slots=True)
class Verdict:
    """The policy's answer for one change, with the rule that decided it."""

    outcome: Outcome
    rule: str
    approvals: int = 0
    direction: Direction = Direction.NONE
    reasons: tuple[str, ...] = ()

    def document(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome.value,
            "rule": self.rule,
            "approvals_required": self.approvals,
            "direction": self.direction.value,
            "reasons": list(self.reasons),
        }


@dataclass(frozen=True, slots=True)
class PlanStep:
    """A system actor's claim that a change is the next stage of an approved rollout plan.

    ``approved``: the plan itself went through the governed path (its creation applied
    under the posture, directly or through an approved change request); ``next_stage``: the
    stage is the one after the stage in force, with no approval gate; ``matches``: the
    change's configuration is exactly what that stage serves. Only all three together let a
    system actor expand anything.
    """

    plan: int
    stage: int
    approved: bool
    next_stage: bool
    matches: bool

    @property
    def covers(self) -> bool:
        return self.approved and self.next_stage and self.matches


@dataclass(frozen=True, slots=True)
class PostureProblem:
    path: str
    message: str


def environment_class(*, protected: bool, development: bool) -> str:
    """``protected`` wins over ``development``; every other environment is ``standard``."""
    if protected:
        return "protected"
    return "development" if development else "standard"


def normalize_posture(data: object) -> tuple[dict[str, dict[str, Any]], list[PostureProblem]]:
    """A full posture table from a (possibly partial) one, with every problem found.

    Tiers or classes left out keep their defaults, so a team states only what it changes.
    """
    problems: list[PostureProblem] = []
    table = {
        tier: {"approvals": dict(v["approvals"]), "reason": v["reason"]}
        for tier, v in DEFAULT_POSTURE.items()
    }
    if not isinstance(data, Mapping):
        return table, [PostureProblem("posture", "must be an object keyed by risk tier")]
    for tier, entry in data.items():
        path = f"posture.{tier}"
        if tier not in RISK_TIERS:
            problems.append(
                PostureProblem(path, f"unknown risk tier; one of {', '.join(RISK_TIERS)}")
            )
        elif not isinstance(entry, Mapping):
            problems.append(PostureProblem(path, "must be an object with approvals and reason"))
        else:
            problems.extend(_read_tier(table[tier], entry, path))
    return table, problems


def _read_tier(into: dict[str, Any], entry: Mapping[str, Any], path: str) -> list[PostureProblem]:
    problems = [
        PostureProblem(f"{path}.{n}", "unknown field")
        for n in entry
        if n not in ("approvals", "reason")
    ]
    if "reason" in entry:
        if entry["reason"] in REASON_RULES:
            into["reason"] = entry["reason"]
        else:
            problems.append(
                PostureProblem(f"{path}.reason", f"must be one of {', '.join(REASON_RULES)}")
            )
    approvals = entry.get("approvals", {})
    if not isinstance(approvals, Mapping):
        problems.append(
            PostureProblem(f"{path}.approvals", "must be an object keyed by environment class")
        )
        return problems
    for env_class, value in approvals.items():
        where = f"{path}.approvals.{env_class}"
        if env_class not in ENVIRONMENT_CLASSES:
            classes = ", ".join(ENVIRONMENT_CLASSES)
            problems.append(PostureProblem(where, f"unknown environment class; one of {classes}"))
        elif value == DENY or (
            isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_APPROVALS
        ):
            into["approvals"][env_class] = value
        else:
            problems.append(PostureProblem(where, f'must be 0-{MAX_APPROVALS} or "deny"'))
    return problems


def _requirement(posture: Mapping[str, Any], tier: str, env_class: str) -> int | str:
    entry = posture.get(tier) or DEFAULT_POSTURE.get(tier) or DEFAULT_POSTURE["restricted"]
    value: int | str | None = entry["approvals"].get(env_class)
    if value is None:
        fallback: int | str = DEFAULT_POSTURE["restricted"]["approvals"][env_class]
        return fallback
    return value


def reason_required(posture: Mapping[str, Any], tier: str, env_class: str | None) -> bool:
    entry = posture.get(tier) or DEFAULT_POSTURE.get(tier) or DEFAULT_POSTURE["restricted"]
    rule = entry["reason"]
    return rule == "always" or (rule == "protected" and env_class == "protected")


def strictest(tiers: list[str]) -> str:
    """The highest of several risk tiers (unknown ones count as restricted)."""
    known = [RISK_TIERS.index(t) if t in RISK_TIERS else len(RISK_TIERS) - 1 for t in tiers]
    return RISK_TIERS[max(known, default=0)]


def decide(  # noqa: PLR0913 - keyword-only facts about one change
    direction: Direction,
    *,
    reasons: tuple[str, ...] = (),
    scopes: list[tuple[str, str]],
    posture: Mapping[str, Any],
    frozen_by: Sequence[str] = (),
    reversal: bool = False,
    system: bool = False,
    plan_step: PlanStep | None = None,
    expiry: bool = False,
) -> Verdict:
    """Apply, ask for approval, or refuse a change of ``direction``.

    ``scopes`` are the (risk tier, environment class) pairs the change reaches — one per
    behavior and environment it touches; the strictest requirement among them applies.
    ``frozen_by`` names the active incidents whose scope the change reaches: they refuse
    every expansion. ``reversal`` marks the kill switch, which always applies at once.

    ``system`` marks an automatic actor (guardrails, rollouts): it only reduces, or applies
    the next stage of an approved plan (``plan_step``), whose approval under this posture
    covered the expansions the plan allows. Any other expansion by a system actor is
    refused, whatever the posture says; an incident refuses even a plan's stage.
    ``expiry`` marks the one other expansion a system actor makes: lifting, when its time
    box ends, an exclusion the same automatic rule created (the rule's approval included the
    expiry; ADR 0010). The caller checks that the change does nothing else.
    """
    if reversal:
        return Verdict(Outcome.APPLY, "reversal: applied at once", 0, direction, reasons)
    if direction is Direction.EXPANSION and frozen_by:
        return Verdict(
            Outcome.REFUSE,
            f"incident {', '.join(frozen_by)}: expansions are frozen until it ends",
            0,
            direction,
            reasons,
        )
    if direction is Direction.EXPANSION and system:
        if expiry:
            return Verdict(
                Outcome.APPLY,
                "time-boxed automatic exclusion expired",
                0,
                direction,
                reasons,
            )
        if plan_step is not None and plan_step.covers:
            return Verdict(
                Outcome.APPLY,
                f"approved plan #{plan_step.plan}: stage {plan_step.stage}",
                0,
                direction,
                reasons,
            )
        return Verdict(
            Outcome.REFUSE,
            "system actors only reduce, or advance an approved plan to its next stage",
            0,
            direction,
            reasons,
        )
    if direction is not Direction.EXPANSION:
        rule = "reduction-immediate" if direction is Direction.REDUCTION else "no-exposure-change"
        return Verdict(Outcome.APPLY, rule, 0, direction, reasons)
    needed = 0
    rule = "posture: direct"
    for tier, env_class in scopes:
        value = _requirement(posture, tier, env_class)
        if value == DENY:
            return Verdict(
                Outcome.REFUSE,
                f"posture.{tier}.approvals.{env_class} = deny",
                0,
                direction,
                reasons,
            )
        if isinstance(value, int) and value > needed:
            needed = value
            rule = f"posture.{tier}.approvals.{env_class} = {value}"
    if needed == 0:
        return Verdict(Outcome.APPLY, rule if scopes else "posture: direct", 0, direction, reasons)
    return Verdict(Outcome.REQUEST, rule, needed, direction, reasons)


def runtime_approvers(posture: Mapping[str, Any], tier: str, env_class: str) -> tuple[int, str]:
    """How many distinct approvers a runtime action of a ``tier`` behavior in an
    environment of ``env_class`` needs, and the rule that says so.

    The number is the posture's approvals for an expansion of that tier and class — an
    action taken under ``approval_required`` is the behavior acting with more authority —
    and at least one: a runtime approval always asks a person. ``0`` (the table's "direct")
    means that one person; ``"deny"`` gives ``0``: every such request is denied at once.
    """
    value = _requirement(posture, tier, env_class)
    rule = f"posture.{tier}.approvals.{env_class} = {value}"
    if value == DENY:
        return 0, rule
    assert isinstance(value, int)
    if value < 1:
        return 1, f"{rule} (a runtime approval always asks one person)"
    return value, rule
