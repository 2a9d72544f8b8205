"""The stage of a behavior, derived from what it serves, where it is evaluated, and what
was recorded about it — never typed in.

defined → in development → rolling out → released → cleanup due → archived:

* **defined** — created, never evaluated, served nowhere;
* **in development** — evaluated, or switched on, outside production only (off there);
* **rolling out** — serves something other than its off variation in production;
* **released** — one variation, not the off one, to everyone in every production
  environment;
* **cleanup due** — its cleanup rule was met (a recorded mark, with its evidence);
* **archived** — removed from snapshots; can be restored.

A *production* environment is a protected one (see docs/cleanup.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from lockgate.lifecycle.rules import CleanupRule, RuleCheck, check_rule
from lockgate.lifecycle.serving import full_release_since, serves_anyone, serves_everyone

__all__ = ["BehaviorFacts", "ConfigVersion", "EnvironmentFacts", "Lifecycle", "Stage", "derive"]


class Stage(StrEnum):
    DEFINED = "defined"
    IN_DEVELOPMENT = "in_development"
    ROLLING_OUT = "rolling_out"
    RELEASED = "released"
    CLEANUP_DUE = "cleanup_due"
    ARCHIVED = "archived"


@dataclass(frozen=True, slots=True)
class ConfigVersion:
    at: datetime
    config: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class EnvironmentFacts:
    """One environment of a behavior: its configuration history and its evaluations."""

    key: str
    production: bool
    history: Sequence[ConfigVersion] = ()
    """Configuration versions, oldest first (the last is the current one)."""
    last_evaluated: datetime | None = None
    recent_variations: Mapping[str, int] = field(default_factory=dict)
    """Evaluations per variation in the stale window (``None`` keys: errors)."""
    last_breach: datetime | None = None
    breached_now: bool = False

    @property
    def config(self) -> Mapping[str, Any] | None:
        return self.history[-1].config if self.history else None


@dataclass(frozen=True, slots=True)
class BehaviorFacts:
    key: str
    created_at: datetime
    lifecycle: str = "temporary"
    owner: str = ""
    behavior_kind: str | None = None
    archived: bool = False
    archived_at: datetime | None = None
    cleanup_due_at: datetime | None = None
    permanent_reason: str | None = None
    rule: CleanupRule | None = None
    environments: Sequence[EnvironmentFacts] = ()

    @property
    def production(self) -> list[EnvironmentFacts]:
        return [e for e in self.environments if e.production]

    @property
    def last_evaluated(self) -> datetime | None:
        seen = [e.last_evaluated for e in self.environments if e.last_evaluated is not None]
        return max(seen) if seen else None


@dataclass(frozen=True, slots=True)
class Lifecycle:
    stage: Stage
    since: datetime | None
    why: str
    released_since: datetime | None
    rule_check: RuleCheck | None
    environments: Mapping[str, Mapping[str, Any]]

    def document(self) -> dict[str, Any]:
        check = self.rule_check
        return {
            "stage": self.stage.value,
            "since": _iso(self.since),
            "why": self.why,
            "released_since": _iso(self.released_since),
            "rule_check": None
            if check is None
            else {"met": check.met, "reason": check.reason, "evidence": dict(check.evidence)},
            "environments": {k: dict(v) for k, v in self.environments.items()},
        }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def released_since(facts: BehaviorFacts) -> datetime | None:
    """When the full release began in every production environment (the latest start)."""
    production = facts.production
    if not production:
        return None
    starts = [full_release_since(e.history) for e in production]
    if any(s is None for s in starts):
        return None
    return max(s for s in starts if s is not None)


def _environment(env: EnvironmentFacts) -> dict[str, Any]:
    config = env.config
    return {
        "production": env.production,
        "on": bool(config and config.get("on")),
        "serves_everyone": serves_everyone(config),
        "full_release_since": _iso(full_release_since(env.history)),
        "last_evaluated": _iso(env.last_evaluated),
        "guardrail_breached": env.breached_now,
    }


def check(facts: BehaviorFacts, now: datetime) -> RuleCheck | None:
    """The behavior's cleanup rule checked at ``now`` (``None``: no rule, or permanent)."""
    if facts.rule is None or facts.lifecycle == "permanent":
        return None
    production = facts.production
    breaches = [e.last_breach for e in production if e.last_breach is not None]
    return check_rule(
        facts.rule,
        now=now,
        created_at=facts.created_at,
        released_since=released_since(facts),
        last_breach=max(breaches) if breaches else None,
        breached_now=any(e.breached_now for e in production),
        last_evaluated=facts.last_evaluated,
    )


def _served_stage(facts: BehaviorFacts, since: datetime | None) -> tuple[Stage, str]:
    if since is not None:
        return Stage.RELEASED, "one variation to everyone in every production environment"
    if any(serves_anyone(e.config) for e in facts.production):
        return Stage.ROLLING_OUT, "served in production"
    outside = [e for e in facts.environments if not e.production]
    if facts.last_evaluated is not None or any(serves_anyone(e.config) for e in outside):
        return Stage.IN_DEVELOPMENT, "evaluated or on outside production; off in production"
    return Stage.DEFINED, "never evaluated; off everywhere"


def derive(facts: BehaviorFacts, now: datetime) -> Lifecycle:
    """The behavior's stage at ``now``, why, and its rule's check."""
    since = released_since(facts)
    envs = {e.key: _environment(e) for e in facts.environments}
    rule_check = check(facts, now)
    if facts.archived:
        stage, why, at = Stage.ARCHIVED, "archived", facts.archived_at
    elif facts.cleanup_due_at is not None:
        stage, why, at = Stage.CLEANUP_DUE, "its cleanup rule was met", facts.cleanup_due_at
    else:
        stage, why = _served_stage(facts, since)
        at = since if stage is Stage.RELEASED else None
    return Lifecycle(stage, at, why, since, rule_check, envs)
