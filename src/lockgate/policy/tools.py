"""Whether a change to a project's tools or tool policy reduces or expands authority.

Pure: the tier policy (:mod:`lockgate.engine.tools`) is compared cell by cell, so the
answer is exact for every behavior tier and mode.

* registering a tool is an expansion (an unregistered tool is denied); removing one is a
  reduction;
* changing a tool's risk class is a reduction when no cell of the effective policy gets
  more permissive for it (raising the class, with the default table), else an expansion;
* adding a denial (to everyone or an audience) is a reduction; removing or editing one is
  an expansion;
* adding a budget, or lowering its calls or widening its window for the same attribute, is
  a reduction; anything else about a budget is an expansion;
* a new tool policy is a reduction when no cell gets more permissive, else an expansion.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lockgate.engine.modes import Mode
from lockgate.engine.tools import RISK_TIERS, RiskClass, ToolOutcome, policy_outcome, policy_table
from lockgate.policy.classify import Classification, Direction, most_severe

__all__ = ["classify_policy_change", "classify_tool_change", "loosened_cells"]

_PERMISSION = {ToolOutcome.DENY: 0, ToolOutcome.APPROVAL_REQUIRED: 1, ToolOutcome.ALLOW: 2}
_NONE = Classification(Direction.NONE)


def loosened_cells(
    before: Mapping[str, Any], after: Mapping[str, Any], risks: list[tuple[str, str]]
) -> list[str]:
    """The cells (``tier.mode.risk``) more permissive under ``after`` than ``before``, for
    each pair of risk classes (old, new) in ``risks``."""
    found = []
    for tier in RISK_TIERS:
        for mode in Mode:
            for old, new in risks:
                was, _ = policy_outcome(before, mode, RiskClass(old), tier)
                now, _ = policy_outcome(after, mode, RiskClass(new), tier)
                if _PERMISSION[now] > _PERMISSION[was]:
                    found.append(f"{tier}.{mode.value}.{new}")
    return found


def classify_policy_change(before: Mapping[str, Any], after: Mapping[str, Any]) -> Classification:
    """A new tool policy: an expansion when any cell gets more permissive."""
    if policy_table(before) == policy_table(after):
        return _NONE  # the same effective table, however it is written
    pairs = [(r.value, r.value) for r in RiskClass]
    loosened = loosened_cells(before, after, pairs)
    if loosened:
        return Classification(
            Direction.EXPANSION, reasons=(f"tool policy allows more: {', '.join(loosened[:5])}",)
        )
    return Classification(Direction.REDUCTION, reasons=("tool policy allows no more",))


def classify_tool_change(
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    policy: Mapping[str, Any],
) -> Classification:
    """One tool registered, changed or removed (documents with ``risk``, ``deny``,
    ``budget``), under the project's tool ``policy``."""
    if before is None and after is None:
        return _NONE
    if before is None:
        return Classification(Direction.EXPANSION, reasons=("registers a new tool",))
    if after is None:
        return Classification(Direction.REDUCTION, reasons=("removes the tool",))
    return most_severe(
        [
            _risk_change(before["risk"], after["risk"], policy),
            _deny_change(before.get("deny") or [], after.get("deny") or []),
            _budget_change(before.get("budget"), after.get("budget")),
        ]
    )


def _risk_change(old: str, new: str, policy: Mapping[str, Any]) -> Classification:
    if old == new:
        return _NONE
    loosened = loosened_cells(policy, policy, [(old, new)])
    if loosened:
        return Classification(
            Direction.EXPANSION, reasons=(f"risk {old} → {new} allows more: {loosened[0]}",)
        )
    return Classification(Direction.REDUCTION, reasons=(f"risk {old} → {new}",))


def _deny_change(old: list[Any], new: list[Any]) -> Classification:
    if old == new:
        return _NONE
    kept = [entry for entry in old if entry in new]
    if len(kept) < len(old):
        return Classification(Direction.EXPANSION, reasons=("removes or edits a denial",))
    return Classification(Direction.REDUCTION, reasons=("adds a denial",))


def _budget_change(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> Classification:
    if old == new:
        return _NONE
    if old is None:
        return Classification(Direction.REDUCTION, reasons=("adds a call budget",))
    if new is None:
        return Classification(Direction.EXPANSION, reasons=("removes the call budget",))
    same_subject = old.get("per", "key") == new.get("per", "key")
    if same_subject and new["calls"] <= old["calls"] and new["window"] >= old["window"]:
        return Classification(Direction.REDUCTION, reasons=("tightens the call budget",))
    return Classification(Direction.EXPANSION, reasons=("loosens the call budget",))
