"""A behavior per variation in one environment over a bounded range: the evaluations SDKs
counted, per hour, and the history of each guardrail (what the cycle kept per 15-minute
slot). The behavior page charts these (:mod:`lockgate.dashboard.series` shapes them).

Bounded by construction: a range is one of :data:`RANGES` (30 days at most); counts are
summed by the database per hour and variation (at most 720 rows per variation), the
guardrail history holds one row per guardrail and slot (at most 2,880 per guardrail).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, and_, func, select

from lockgate.control import lookup
from lockgate.control.base import Caller, Services, iso
from lockgate.errors import FieldProblem, InvalidInput, NotFound
from lockgate.policy.access import Action
from lockgate.store.counts import hour_of
from lockgate.store.tables import evaluation_hours, guardrail_results, guardrails

__all__ = [
    "DEFAULT_RANGE",
    "RANGES",
    "VariationData",
    "Window",
    "decision_totals",
    "summarize_counts",
    "guardrail_step",
    "variation_data",
    "window",
]

RANGES: dict[str, tuple[int, int]] = {
    "24h": (86400, 3600),
    "7d": (7 * 86400, 3600),
    "30d": (30 * 86400, 6 * 3600),
}
"""Range → (its length, the bucket charted) in seconds: 24, 168 and 120 buckets."""
DEFAULT_RANGE = "24h"
SLOT = 900
"""The guardrail history's slot (lockgate.control.guardrails.cycle.RESULT_SLOT)."""
MAX_POINTS = 200
"""Points of a guardrail chart at most: the last evaluation of each step is read."""


def guardrail_step(span: int) -> int:
    """Seconds per point of a guardrail chart over ``span``: whole slots, at most
    :data:`MAX_POINTS` points (900 for a day, 3,600 for a week, 13,500 for 30 days)."""
    slots = -(-span // (SLOT * MAX_POINTS))
    return max(1, slots) * SLOT


@dataclass(frozen=True)
class Window:
    """``[start, end)`` in Unix seconds, aligned to ``bucket``; ``end`` covers now."""

    name: str
    start: int
    end: int
    bucket: int


@dataclass(frozen=True)
class VariationData:
    environment: str
    window: Window
    variations: list[str]
    """The behavior's declared variations, in their order."""
    counts: list[tuple[int, str | None, int]]
    """(hour start, variation — ``None``: the caller's default —, evaluations)."""
    guardrails: list[dict[str, Any]]
    """Each guardrail of the behavior here: its definition, state and ``history``."""


def window(name: str, now: float) -> Window:
    """The range ``name`` ending at the bucket that holds ``now``; a bad name is refused
    naming the ``range`` field."""
    if name not in RANGES:
        raise InvalidInput("bad range", [FieldProblem("range", f"one of {', '.join(RANGES)}")])
    span, bucket = RANGES[name]
    end = (int(now) // bucket + 1) * bucket
    return Window(name, end - span, end, bucket)


def _stamp(seconds: int) -> str:
    return iso(datetime.fromtimestamp(seconds, UTC))


def _hour(prefix: str) -> int:
    """``2026-12-06T03`` (a timestamp's first 13 characters) → its Unix seconds."""
    return int(datetime.fromisoformat(f"{prefix}:00:00+00:00").timestamp())


def _counts(conn: Any, env_id: int, key: str, w: Window) -> list[tuple[int, str | None, int]]:
    c = evaluation_hours.c
    rows = conn.execute(
        select(c.hour, c.variation, func.sum(c.count).label("n"))
        .where(
            c.environment_id == env_id,
            c.flag == key,
            c.hour >= hour_of(_stamp(w.start)),
            c.hour < hour_of(_stamp(w.end)),
        )
        .group_by(c.hour, c.variation)
    ).all()
    return sorted(
        ((_hour(r.hour), r.variation or None, int(r.n or 0)) for r in rows),
        key=lambda t: (t[0], t[1] or ""),
    )


def decision_totals(conn: Any, key: str, envs: dict[int, Row[Any]]) -> list[dict[str, Any]]:
    """Every evaluation of the behavior ever counted, per environment: the total, per
    variation (the caller's default as ``(caller's default)``) and per reason — summed
    from the hours, so the cost does not grow with the number of SDK instances."""
    c = evaluation_hours.c
    rows = conn.execute(
        select(c.environment_id, c.variation, c.reason, func.sum(c.count).label("n"))
        .where(c.environment_id.in_(list(envs)), c.flag == key)
        .group_by(c.environment_id, c.variation, c.reason)
    ).all()
    return summarize_counts(rows, envs)


def summarize_counts(rows: Iterable[Any], envs: dict[int, Row[Any]]) -> list[dict[str, Any]]:
    """Rows of (environment_id, variation, reason, n) as one summary per environment: the
    total, per variation (the caller's default as ``(caller's default)``) and per reason."""
    summary: dict[int, dict[str, Any]] = {}
    for row in rows:
        env = summary.setdefault(
            row.environment_id,
            {"environment": envs[row.environment_id].key, "total": 0, "variations": {},
             "reasons": {}},
        )  # fmt: skip
        count = int(row.n or 0)
        env["total"] += count
        variation = row.variation or "(caller's default)"  # None, or DEFAULT_VARIATION
        env["variations"][variation] = env["variations"].get(variation, 0) + count
        env["reasons"][row.reason] = env["reasons"].get(row.reason, 0) + count
    return sorted(summary.values(), key=lambda item: str(item["environment"]))


def _guardrails(conn: Any, flag_id: int, env_id: int, w: Window) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(guardrails)
        .where(guardrails.c.flag_id == flag_id, guardrails.c.environment_id == env_id)
        .order_by(guardrails.c.key)
    ).all()
    if not rows:
        return []
    r = guardrail_results.c
    step = guardrail_step(w.end - w.start)
    last = (  # the last slot of each step, from the unique index alone
        select(r.guardrail_id, func.max(r.slot).label("slot"))
        .where(r.guardrail_id.in_([g.id for g in rows]), r.slot >= w.start, r.slot < w.end)
        .group_by(r.guardrail_id, r.slot // step)
        .subquery()
    )
    history = conn.execute(
        select(guardrail_results)
        .join(last, and_(r.guardrail_id == last.c.guardrail_id, r.slot == last.c.slot))
        .order_by(r.guardrail_id, r.slot)
    ).all()
    found: list[dict[str, Any]] = []
    for g in rows:
        definition = dict(g.definition)
        evaluation = dict(g.evaluation or {})
        found.append(
            {
                "key": g.key,
                "metric": definition.get("metric"),
                "aggregation": definition.get("aggregation", "rate"),
                "comparison": definition.get("comparison", "regression"),
                "direction": definition.get("direction", "higher_is_worse"),
                "threshold": definition.get("threshold", 0.0),
                "state": g.state,
                "decision": evaluation.get("decision"),
                "evaluated_at": g.evaluated_at,
                "history": [dict(h._mapping) for h in history if h.guardrail_id == g.id],
            }
        )
    return found


def variation_data(
    svc: Services, caller: Caller, project_key: str, key: str, environment: str, range_name: str
) -> VariationData:
    """What the behavior's per-variation charts show in ``environment`` over the range."""
    w = window(range_name, svc.clock().timestamp())
    with svc.view() as conn:
        project = caller.project(conn, project_key, Action.READ)
        flag = lookup.flag(conn, project, key)
        try:
            env = lookup.environment(conn, project, environment)
        except NotFound as exc:
            problem = f"no environment {environment!r} in project {project_key!r}"
            raise InvalidInput("bad environment", [FieldProblem("environment", problem)]) from exc
        variations = [str(v.get("key")) for v in flag.variations or [] if isinstance(v, dict)]
        return VariationData(
            environment=env.key,
            window=w,
            variations=variations,
            counts=_counts(conn, env.id, key, w),
            guardrails=_guardrails(conn, flag.id, env.id, w),
        )
