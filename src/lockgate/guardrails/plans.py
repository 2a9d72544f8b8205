"""The staged rollout's state machine, and the configuration each stage serves.

:func:`next_step` decides, from the plan, its state and what the guardrails say, whether
the system may advance to the next stage now — and if not, every reason why not. It only
ever answers "advance" when every guardrail is healthy with enough data, the stage was
held long enough and saw enough of the generated variation, the split is not broken
(sample-ratio mismatch), no incident is active, the plan is not paused or held for a
person, and the next stage has no approval gate. :func:`stage_config` is the behavior's
configuration for a stage: the system writes it through the governed change path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lockgate.guardrails.evaluate import BREACHED, HEALTHY, GuardrailState
from lockgate.guardrails.model import PlanSpec, StageSpec

__all__ = [
    "ACTIVE",
    "AWAITING_APPROVAL",
    "COMPLETED",
    "PAUSED",
    "STAGE_RULE",
    "PlanState",
    "Step",
    "next_step",
    "stage_config",
]

ACTIVE = "active"
PAUSED = "paused"
AWAITING_APPROVAL = "awaiting_approval"
COMPLETED = "completed"
STAGE_RULE = "rollout-stage"
"""The id of the rule a stage with an audience adds (other rules are kept as they are)."""
BUCKET_SPACE = 100_000


@dataclass(frozen=True, slots=True)
class PlanState:
    stage: int
    """The stage in force: ``-1`` before the first, else an index into the plan's stages."""
    status: str
    stage_started_at: float
    """Unix seconds when the current stage started."""
    require_approval: bool = False
    """Set by a guardrail's ``require_approval`` action: only a person advances now."""


@dataclass(frozen=True, slots=True)
class Step:
    advance: bool
    reasons: tuple[str, ...]
    """Why not (empty when ``advance``); or what was checked, for the audit evidence."""
    checks: Mapping[str, Any]


def next_step(
    plan: PlanSpec,
    state: PlanState,
    *,
    now: float,
    guardrails: Mapping[str, GuardrailState],
    incidents: Sequence[str] = (),
    stage_exposures: int = 0,
    srm_p: float | None = None,
) -> Step:
    """May the system advance ``plan`` to its next stage now? (see the module docstring)"""
    reasons: list[str] = []
    checks: dict[str, Any] = {
        "stage": state.stage,
        "held_seconds": max(now - state.stage_started_at, 0.0),
        "stage_exposures": stage_exposures,
        "srm_p": srm_p,
        "incidents": list(incidents),
        "guardrails": {k: g.state for k, g in sorted(guardrails.items())},
    }
    if state.status == COMPLETED or state.stage + 1 >= len(plan.stages):
        return Step(False, ("the plan is at its last stage",), checks)
    reasons.extend(_held_by_people_or_incidents(state, incidents))
    reasons.extend(_held_by_guardrails(state, guardrails))
    if state.stage >= 0:
        current = plan.stages[state.stage]
        held = now - state.stage_started_at
        if held < current.min_hold:
            reasons.append(f"stage held {held:.0f}s of its minimum {current.min_hold}s")
        if stage_exposures < current.min_sample:
            reasons.append(
                f"stage saw {stage_exposures} exposures of its minimum {current.min_sample}"
            )
    if srm_p is not None and srm_p < plan.srm_alpha:
        reasons.append(
            f"sample-ratio mismatch: the split differs from the plan's (p = {srm_p:.3g} < "
            f"{plan.srm_alpha:g})"
        )
    following = plan.stages[state.stage + 1]
    if following.approval:
        reasons.append(f"stage {state.stage + 1} ({following.name}) has an approval gate")
    return Step(not reasons, tuple(reasons), checks)


def _held_by_people_or_incidents(state: PlanState, incidents: Sequence[str]) -> list[str]:
    reasons = []
    if state.status == PAUSED:
        reasons.append("the plan is paused")
    if state.require_approval:
        reasons.append("a guardrail requires a person's approval for further expansion")
    if incidents:
        reasons.append(f"incident {', '.join(incidents)} is active: never advance during one")
    return reasons


def _held_by_guardrails(state: PlanState, guardrails: Mapping[str, GuardrailState]) -> list[str]:
    reasons = []
    if not guardrails and state.stage >= 0:
        reasons.append("no guardrail watches this rollout")
    for key, g in sorted(guardrails.items()):
        if g.state == BREACHED:
            reasons.append(f"guardrail {key!r} is breached")
        elif g.state != HEALTHY and state.stage >= 0:  # before the first stage: no data yet
            reasons.append(f"guardrail {key!r} is not healthy with enough data ({g.state})")
    return reasons


def expected_share(stage: StageSpec) -> float | None:
    """The generated variation's share of exposures the split asks for (``None`` for a
    stage with an audience, whose share depends on traffic: no sample-ratio check)."""
    if stage.clauses or not 0 < stage.percent < 100:
        return None
    return stage.percent / 100.0


def _serve(stage: StageSpec, generated: str, stable: str) -> dict[str, Any]:
    weight = stage.weight
    if weight >= BUCKET_SPACE:
        return {"variation": generated}
    if weight <= 0:
        return {"variation": stable}
    return {
        "split": [
            {"variation": generated, "weight": weight},
            {"variation": stable, "weight": BUCKET_SPACE - weight},
        ]
    }


def stage_config(
    current: Mapping[str, Any], stage: StageSpec | None, generated: str, stable: str
) -> dict[str, Any]:
    """The configuration fields to write for ``stage`` (``None``: nobody gets the generated
    variation — the plan's fallback), keeping every rule that is not the stage's own."""
    others = [r for r in current.get("rules") or [] if r.get("id") != STAGE_RULE]
    if stage is None:
        default = current.get("default") or {}
        if "split" in default:
            # Kept a split (at 0 %) so that it is seen, context by context, as serving no
            # one more: a fixed variation also reaches contexts a split could not bucket.
            zero = {
                "split": [
                    {"variation": generated, "weight": 0},
                    {"variation": stable, "weight": BUCKET_SPACE},
                ]
            }
            if default.get("bucket_by"):
                zero["bucket_by"] = default["bucket_by"]
            return {"on": True, "rules": others, "default": zero}
        return {"on": True, "rules": others, "default": {"variation": stable}}
    serve = _serve(stage, stage.variation or generated, stable)
    if stage.clauses:
        rule = {"id": STAGE_RULE, "clauses": [dict(c) for c in stage.clauses], "serve": serve}
        return {"on": True, "rules": [*others, rule], "default": {"variation": stable}}
    return {"on": True, "rules": others, "default": serve}
