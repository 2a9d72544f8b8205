"""What one guardrail evaluation says per variation, for its history: a pure function.

The cycle keeps, beside each guardrail's state, the metric of every variation in the
window (the value the test compared) and the line the tested quantity is judged against,
so that the dashboard can chart control against treatment, the threshold and the interval
over time. Nothing here decides anything: :mod:`lockgate.guardrails.evaluate` does.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lockgate.guardrails.evaluate import Summary
from lockgate.guardrails.model import GuardrailSpec

__all__ = ["arm_values", "boundary", "limit_scale", "prometheus_arms"]


def _value(spec: GuardrailSpec, count: int, total: float, exposures: int) -> float | None:
    """The metric of one arm as the guardrail aggregates it (``None``: nothing to divide)."""
    if spec.aggregation == "rate":
        return total / exposures if exposures else None
    if spec.aggregation == "mean":
        return total / count if count else None
    if spec.aggregation == "sum":
        return total
    return float(count)


def arm_values(
    spec: GuardrailSpec,
    summaries: Iterable[Summary],
    *,
    generated: Iterable[str] = (),
    stable: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Per variation (whole population, cohorts left out): ``{"n": samples, "value": metric,
    "role": "treatment" | "control" | None}`` — ``n`` is exposures for a rate, tracked
    values otherwise; ``role`` says which arm of the test the variation was."""
    treated = set(generated)
    totals: dict[str, list[float]] = {}
    for s in summaries:
        if s.cohort != "":
            continue
        t = totals.setdefault(s.variation, [0, 0.0, 0])
        t[0] += s.count
        t[1] += s.total
        t[2] += s.exposures
    arms: dict[str, dict[str, Any]] = {}
    for variation, (count, total, exposures) in sorted(totals.items()):
        n = int(exposures) if spec.aggregation == "rate" else int(count)
        role = _role(variation, treated, stable)
        value = _value(spec, int(count), total, int(exposures))
        arms[variation] = {"n": n, "value": value, "role": role}
    return arms


def _role(variation: str, treated: set[str], stable: str | None) -> str | None:
    if variation in treated:
        return "treatment"
    return "control" if variation == stable else None


def prometheus_arms(
    test: dict[str, Any], generated: Iterable[str] = (), stable: str | None = None
) -> dict[str, dict[str, Any]]:
    """Per variation, the values a Prometheus query returned (no sample sizes); a query
    without a variation label answers one ``value``, which is the treatment's."""
    values = test.get("values") or {}
    treated = set(generated) | {"value"}
    return {
        str(k): {"n": None, "value": float(v), "role": _role(str(k), treated, stable)}
        for k, v in sorted(values.items())
    }


def boundary(spec: GuardrailSpec) -> float | None:
    """The line the tested quantity (the estimate and its interval) is judged against: the
    threshold itself for an absolute guardrail or a cap; 0 for a regression on summaries,
    whose estimate is ``treatment - scale x control``; ``None`` for a regression on a
    Prometheus query, judged against ``scale x control`` as it moves."""
    if spec.comparison != "regression" or (not spec.statistical and not spec.prometheus):
        return spec.threshold
    return 0.0 if spec.statistical else None


def limit_scale(spec: GuardrailSpec) -> float | None:
    """A regression's tolerated ratio to control (``1.1``: 10 % worse is still healthy);
    ``None`` for an absolute guardrail, whose limit is the threshold."""
    if spec.comparison != "regression":
        return None
    if spec.direction == "higher_is_worse":
        return 1.0 + spec.threshold
    return 1.0 - spec.threshold
