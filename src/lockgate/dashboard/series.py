"""The behavior page's charts per variation as data: pure functions, no I/O.

Each takes what :mod:`lockgate.control.evidence.variations` read and answers a
:class:`Chart` — shared times and named series, ready for the page's JSON (which the
browser draws with uPlot) and for the table under it (the same numbers as text).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from lockgate.control.evidence.variations import guardrail_step

__all__ = [
    "CALLERS_DEFAULT",
    "Chart",
    "Series",
    "exposure_chart",
    "guardrail_charts",
]

CALLERS_DEFAULT = "(caller's default)"
"""The label of evaluations that served no variation (the caller's default value)."""


@dataclass(frozen=True)
class Series:
    label: str
    values: list[float | None]
    kind: str = "line"
    """line | limit (a threshold to stay on the right side of) | estimate | low | high."""


@dataclass(frozen=True)
class Chart:
    times: list[int]
    """Unix seconds, shared by every series."""
    series: list[Series]
    notes: dict[str, Any] = field(default_factory=dict)

    def document(self) -> dict[str, Any]:
        """What the page embeds as JSON for the browser."""
        return {
            "times": self.times,
            "series": [{"label": s.label, "kind": s.kind, "values": s.values} for s in self.series],
            **self.notes,
        }

    def rows(self) -> list[tuple[int, list[float | None]]]:
        """The table under the chart: one row per time, one cell per series."""
        return [(t, [s.values[i] for s in self.series]) for i, t in enumerate(self.times)]


def _order(declared: Iterable[str], seen: Iterable[str | None]) -> list[str | None]:
    """The variations counted: declared ones first (in their order), then others by name,
    then the caller's default. A variation nobody was served in the range is left out."""
    counted = set(seen)
    order: list[str | None] = [v for v in dict.fromkeys(declared) if v in counted]
    order.extend(sorted(v for v in counted if v is not None and v not in order))
    if None in counted:
        order.append(None)
    return order


def exposure_chart(
    counts: list[tuple[int, str | None, int]],
    variations: list[str],
    start: int,
    end: int,
    bucket: int,
) -> Chart:
    """Evaluations per variation per bucket of ``[start, end)``, zero where none were
    counted; hours outside the range are left out. ``notes["totals"]``: per variation."""
    times = list(range(start, end, bucket))
    order = _order(variations, [v for hour, v, _ in counts if start <= hour < end])
    values: dict[str | None, list[float | None]] = {v: [0] * len(times) for v in order}
    for hour, variation, n in counts:
        if start <= hour < end:
            cells = values[variation]
            index = (hour - start) // bucket
            cells[index] = (cells[index] or 0) + n
    series = [Series(CALLERS_DEFAULT if v is None else v, values[v]) for v in order]
    totals = {s.label: int(sum(x or 0 for x in s.values)) for s in series}
    return Chart(times, series, {"totals": totals})


def _last_per_step(history: list[dict[str, Any]], step: int) -> list[dict[str, Any]]:
    """The last evaluation in each step (the history is ordered by slot)."""
    kept: dict[int, dict[str, Any]] = {}
    for row in history:
        kept[int(row["slot"]) // step] = row
    return [kept[k] for k in sorted(kept)]


def _arm_order(rows: list[dict[str, Any]]) -> list[str]:
    """Control first, then treatments, then any other variation, each by name."""
    roles: dict[str, int] = {}
    rank = {"control": 0, "treatment": 1}
    for row in rows:
        for name, arm in (row.get("arms") or {}).items():
            roles[name] = min(roles.get(name, 2), rank.get(arm.get("role"), 2))
    return sorted(roles, key=lambda name: (roles[name], name))


def _limit(row: dict[str, Any], guardrail: dict[str, Any]) -> float | None:
    """The metric's limit at one evaluation: the threshold of an absolute guardrail; for a
    regression, control's value times the tolerated ratio."""
    if row.get("scale") is None:
        return float(row.get("threshold", guardrail.get("threshold", 0.0)))
    control = [a for a in (row.get("arms") or {}).values() if a.get("role") == "control"]
    if not control or control[0].get("value") is None:
        return None
    return float(control[0]["value"]) * float(row["scale"])


def guardrail_charts(guardrail: dict[str, Any], span: int) -> tuple[Chart, Chart]:
    """Two charts of one guardrail's history over ``span`` seconds: the metric per variation
    with its limit (``limit``), and the tested quantity's estimate with its interval
    (``low``, ``high``) against the line it is judged by (``limit``)."""
    rows = _last_per_step(list(guardrail.get("history") or []), guardrail_step(span))
    times = [int(r["slot"]) for r in rows]
    names = _arm_order(rows)
    arms = [
        Series(name, [(r.get("arms") or {}).get(name, {}).get("value") for r in rows])
        for name in names
    ]
    limit = Series("threshold", [_limit(r, guardrail) for r in rows], "limit")
    metric = Chart(times, [*arms, limit], {"states": [r["state"] for r in rows]})
    interval = Chart(
        times,
        [
            Series("estimate", [r.get("estimate") for r in rows], "estimate"),
            Series("interval low", [r.get("low") for r in rows], "low"),
            Series("interval high", [r.get("high") for r in rows], "high"),
            Series("judged against", [r.get("boundary") for r in rows], "limit"),
        ],
        {"states": [r["state"] for r in rows]},
    )
    return metric, interval
