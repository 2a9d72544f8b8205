"""Which behaviors an incident covers: its scope, as a pure function of their definitions.

An incident is declared for one environment and, optionally, narrowed by tag (any of
several), by minimum risk tier and by owner; every condition given must hold. While it is
active, every behavior in scope serves its fallback (evaluation reason ``INCIDENT``) and
no change may expand the exposure or authority of a behavior in scope.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from lockgate.policy.postures import RISK_TIERS

__all__ = ["IncidentScope", "ScopeProblem", "parse_scope"]


@dataclass(frozen=True, slots=True)
class ScopeProblem:
    field: str
    message: str


@dataclass(frozen=True, slots=True)
class IncidentScope:
    tags: tuple[str, ...] = ()
    min_risk: str | None = None
    owner: str | None = None

    def covers(self, *, tags: Iterable[str], risk_tier: str, owner: str | None) -> bool:
        """Whether a behavior with these definition fields is in scope."""
        if self.tags and not set(self.tags) & set(tags):
            return False
        if self.min_risk is not None and _rank(risk_tier) < _rank(self.min_risk):
            return False
        return self.owner is None or owner == self.owner

    def document(self) -> dict[str, Any]:
        return {"tags": list(self.tags), "min_risk": self.min_risk, "owner": self.owner}

    def describe(self) -> str:
        parts = []
        if self.tags:
            parts.append("tag " + " or ".join(self.tags))
        if self.min_risk:
            parts.append(f"risk {self.min_risk} or above")
        if self.owner:
            parts.append(f"owner {self.owner}")
        return ", ".join(parts) or "every behavior"


def _rank(tier: str) -> int:
    # An unknown tier ranks as the highest: a scope by risk never misses it.
    return RISK_TIERS.index(tier) if tier in RISK_TIERS else len(RISK_TIERS)


def parse_scope(data: Mapping[str, Any]) -> tuple[IncidentScope, list[ScopeProblem]]:
    """The scope from ``{"tags": [...], "min_risk": ..., "owner": ...}`` (all optional)."""
    problems: list[ScopeProblem] = []
    raw_tags = data.get("tags") or []
    tags: list[str] = []
    if not isinstance(raw_tags, list):
        problems.append(ScopeProblem("tags", "a list of tags"))
    else:
        for index, tag in enumerate(raw_tags):
            if not isinstance(tag, str) or not tag.strip():
                problems.append(ScopeProblem(f"tags[{index}]", "a non-empty tag"))
            elif tag not in tags:
                tags.append(tag)
    min_risk = data.get("min_risk")
    if min_risk is not None and min_risk not in RISK_TIERS:
        problems.append(ScopeProblem("min_risk", f"one of {', '.join(RISK_TIERS)}"))
        min_risk = None
    owner = data.get("owner")
    if owner is not None and (not isinstance(owner, str) or not owner.strip()):
        problems.append(ScopeProblem("owner", "a non-empty owner"))
        owner = None
    return IncidentScope(tuple(tags), min_risk, owner), problems
