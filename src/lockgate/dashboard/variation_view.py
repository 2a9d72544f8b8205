"""The behavior page's charts per variation: which environment and range the viewer asked
for (``?environment=KEY&range=24h|7d|30d``), read through the use-case, shaped by
:mod:`lockgate.dashboard.series` for the template ``_variation_charts.html``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request

from lockgate.control.base import Services
from lockgate.control.evidence import variations
from lockgate.dashboard import series
from lockgate.dashboard.session import Viewer
from lockgate.errors import FieldProblem, InvalidInput

__all__ = ["variation_charts"]


def _wanted(request: Request, columns: list[Any]) -> tuple[str, str]:
    q = request.query_params
    for name in ("environment", "range"):
        if len(q.get(name, "")) > 200:
            raise InvalidInput("bad filter", [FieldProblem(name, "at most 200 characters")])
    environment = q.get("environment") or (columns[0].key if columns else "")
    return environment, q.get("range") or variations.DEFAULT_RANGE


def variation_charts(
    request: Request, services: Services, viewer: Viewer, project: str, key: str, columns: list[Any]
) -> dict[str, Any] | None:
    """The section's context; ``None`` when the project has no environment."""
    environment, range_name = _wanted(request, columns)
    if not environment:
        return None
    if environment not in {c.key for c in columns}:
        problem = f"no environment {environment!r} in project {project!r}"
        raise InvalidInput("bad environment", [FieldProblem("environment", problem)])
    data = variations.variation_data(services, viewer.caller, project, key, environment, range_name)
    w = data.window
    exposure = series.exposure_chart(data.counts, data.variations, w.start, w.end, w.bucket)
    guards = []
    for g in data.guardrails:
        metric, interval = series.guardrail_charts(g, w.end - w.start)
        guards.append({**g, "metric_chart": metric, "interval_chart": interval})
    column = next((c for c in columns if c.key == data.environment), None)
    return {
        "environment": data.environment,
        "column": column,
        "range": w.name,
        "ranges": list(variations.RANGES),
        "window": w,
        "exposure": exposure,
        "guardrails": guards,
        "when": _when,
        "number": _number,
    }


def _when(seconds: int) -> str:
    """Unix seconds as ``2026-12-06 03:00 UTC`` (the tables under the charts)."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _number(value: float | None) -> str:
    """A value of a table cell: 4 significant digits, ``—`` for none."""
    return "—" if value is None else f"{value:.4g}"
