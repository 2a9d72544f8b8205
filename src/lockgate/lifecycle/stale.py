"""Stale behaviors, per environment, from the decision log's counts.

A temporary behavior is *stale* in an environment when nothing evaluated it for N days,
or when it served one variation to everyone for N days (its evaluations in those days all
got one variation and its configuration serves that variation to everyone). A behavior
older than the default lifetime of its kind is *past its lifetime*. N and the lifetimes are
settings; the defaults are below. Permanent behaviors are never stale.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from lockgate.lifecycle.serving import serves_everyone
from lockgate.lifecycle.stages import BehaviorFacts, EnvironmentFacts

__all__ = ["DEFAULT_LIFETIME_DAYS", "DEFAULT_STALE_DAYS", "StaleFinding", "find_stale"]

DEFAULT_STALE_DAYS = 14
"""Days without an evaluation, or of one variation to everyone, that make a behavior stale."""

DEFAULT_LIFETIME_DAYS: Mapping[str, int] = {
    "ui_path": 30,
    "prompt": 30,
    "backend_workflow": 60,
    "model_route": 60,
    "tool_action": 60,
    "integration": 90,
    "data_movement": 90,
    "permission_path": 90,
}
"""How long a temporary behavior of each kind is expected to live (days)."""
_OTHER_KINDS_DAYS = 90


@dataclass(frozen=True, slots=True)
class StaleFinding:
    environment: str | None
    """``None``: the behavior as a whole (past its lifetime)."""
    kind: str  # no_evaluations | one_variation | past_lifetime
    days: float
    detail: str

    def document(self) -> dict[str, object]:
        return {
            "environment": self.environment,
            "kind": self.kind,
            "days": round(self.days, 1),
            "detail": self.detail,
        }


def _days(span: timedelta) -> float:
    return span.total_seconds() / 86_400


def _in_environment(
    env: EnvironmentFacts, created_at: datetime, now: datetime, days: int
) -> StaleFinding | None:
    quiet = _days(now - (env.last_evaluated or created_at))
    if quiet >= days:
        said = "never evaluated" if env.last_evaluated is None else "no evaluation"
        return StaleFinding(env.key, "no_evaluations", quiet, f"{said} for {int(quiet)} days")
    served = {v: n for v, n in env.recent_variations.items() if n > 0}
    everyone = serves_everyone(env.config)
    if len(served) == 1 and everyone is not None and everyone in served:
        unchanged = _days(now - env.history[-1].at) if env.history else 0.0
        if unchanged >= days and _days(now - created_at) >= days:
            return StaleFinding(
                env.key,
                "one_variation",
                unchanged,
                f"served {everyone!r} to everyone for {int(unchanged)} days",
            )
    return None


def find_stale(
    facts: BehaviorFacts,
    now: datetime,
    *,
    days: int = DEFAULT_STALE_DAYS,
    lifetimes: Mapping[str, int] = DEFAULT_LIFETIME_DAYS,
) -> list[StaleFinding]:
    """What makes a temporary, unarchived behavior stale at ``now`` (empty: nothing)."""
    if facts.lifecycle == "permanent" or facts.archived:
        return []
    found = [
        f
        for env in facts.environments
        if (f := _in_environment(env, facts.created_at, now, days)) is not None
    ]
    lifetime = lifetimes.get(facts.behavior_kind or "", _OTHER_KINDS_DAYS)
    age = _days(now - facts.created_at)
    if age >= lifetime:
        kind = facts.behavior_kind or "behavior"
        found.append(
            StaleFinding(
                None,
                "past_lifetime",
                age,
                f"{int(age)} days old; a {kind} lives {lifetime}",
            )
        )
    return found
