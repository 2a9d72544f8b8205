"""A guardrail's state from the summaries of its window: a pure function.

``healthy``, ``breached``, ``insufficient_data`` (some data, fewer samples than the
guardrail's minimum in an arm) or ``no_data``; with the estimate, its time-uniform
interval, the sample sizes, the test and its decision — the evidence an automatic action
records. Small samples never trigger and never clear a guardrail: below the minimum the
state is ``insufficient_data``, which neither acts nor lets a rollout advance.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from lockgate.guardrails import stats
from lockgate.guardrails.model import GuardrailSpec

__all__ = [
    "BREACHED",
    "HEALTHY",
    "INSUFFICIENT",
    "NO_DATA",
    "OPTIMAL_N_FACTOR",
    "GuardrailState",
    "Summary",
    "evaluate",
    "evaluate_values",
]

HEALTHY = "healthy"
BREACHED = "breached"
INSUFFICIENT = "insufficient_data"
NO_DATA = "no_data"
OPTIMAL_N_FACTOR = 10
"""The confidence sequence is tuned tightest at ``10 x min_sample`` samples (ADR 0010)."""
TEST_NAME = "asymptotic confidence sequence (normal mixture)"


@dataclass(frozen=True, slots=True)
class Summary:
    """One variation's (and cohort's) totals over the window."""

    variation: str
    cohort: str
    count: int
    total: float
    total_sq: float
    exposures: int


@dataclass(frozen=True)
class GuardrailState:
    state: str
    decision: str
    estimate: float | None = None
    low: float | None = None
    high: float | None = None
    samples: dict[str, int] = field(default_factory=dict)
    threshold: float = 0.0
    test: dict[str, Any] = field(default_factory=dict)
    cohorts: tuple[tuple[str, float], ...] = ()
    """Per-cohort caps: the cohort values over the cap, with their totals."""

    @property
    def breached(self) -> bool:
        return self.state == BREACHED

    def document(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "decision": self.decision,
            "estimate": self.estimate,
            "interval": None if self.low is None else [self.low, self.high],
            "samples": dict(self.samples),
            "threshold": self.threshold,
            "test": dict(self.test),
            "cohorts_over": [{"cohort": c, "value": v} for c, v in self.cohorts],
        }


def _arm(spec: GuardrailSpec, rows: list[Summary]) -> stats.Arm:
    count = sum(r.count for r in rows)
    total = sum(r.total for r in rows)
    total_sq = sum(r.total_sq for r in rows)
    if spec.aggregation == "rate":
        return stats.Arm(sum(r.exposures for r in rows), total, total_sq)
    return stats.Arm(count, total, total_sq)


def _worse(spec: GuardrailSpec, low: float, high: float, against: float) -> bool:
    if spec.direction == "higher_is_worse":
        return low > against
    return high < against


def evaluate(
    spec: GuardrailSpec,
    summaries: Iterable[Summary],
    *,
    generated: Iterable[str],
    stable: str,
) -> GuardrailState:
    """The state of ``spec`` given its window's summaries.

    ``generated`` are the variations under test (the rollout's); ``stable`` is the one
    they are compared with. Rows of other variations are ignored except by per-cohort caps,
    which count every variation: a cap is on the cohort, whatever it was served.
    """
    rows = list(summaries)
    names = set(generated)
    if spec.per is not None:
        return _cohort_caps(spec, rows)
    treatment_rows = [r for r in rows if r.variation in names and r.cohort == ""]
    control_rows = [r for r in rows if r.variation == stable and r.cohort == ""]
    treatment = _arm(spec, treatment_rows)
    control = _arm(spec, control_rows)
    label_t = "+".join(sorted(names)) or "generated"
    samples = {label_t: treatment.n}
    if spec.comparison == "regression":
        samples[stable] = control.n
    if not spec.statistical:
        return _total(spec, treatment, samples)
    if treatment.n == 0 and (spec.comparison == "absolute" or control.n == 0):
        return GuardrailState(
            NO_DATA, "no summaries in the window", samples=samples, threshold=spec.threshold
        )
    rho2 = stats.rho_squared(spec.alpha, OPTIMAL_N_FACTOR * spec.min_sample)
    test = {"name": TEST_NAME, "alpha": spec.alpha, "rho2": rho2, "min_sample": spec.min_sample}
    short = [f"{k}: {n} < {spec.min_sample}" for k, n in samples.items() if n < spec.min_sample]
    if spec.comparison == "absolute":
        interval = stats.mean_interval(treatment, spec.alpha, rho2)
        against = spec.threshold
        what = f"{spec.aggregation} of {spec.metric!r}"
    else:
        scale = (
            1.0 + spec.threshold if spec.direction == "higher_is_worse" else 1.0 - spec.threshold
        )
        interval = stats.difference_interval(treatment, control, spec.alpha, rho2, scale - 1.0)
        against = 0.0
        test["scale"] = scale
        what = f"{label_t} - {scale:g} x {stable} ({spec.aggregation} of {spec.metric!r})"
    shown = (interval.estimate, interval.low, interval.high)
    if short:
        return GuardrailState(
            INSUFFICIENT,
            f"too few samples to decide ({'; '.join(short)})",
            *shown, samples=samples, threshold=spec.threshold, test=test,
        )  # fmt: skip
    if _worse(spec, interval.low, interval.high, against):
        side = "above" if spec.direction == "higher_is_worse" else "below"
        decision = (
            f"breached: the {1 - spec.alpha:.0%} confidence sequence for {what} is "
            f"[{interval.low:.6g}, {interval.high:.6g}], entirely {side} {against:g}"
        )
        return GuardrailState(
            BREACHED, decision, *shown, samples=samples, threshold=spec.threshold, test=test
        )
    decision = (
        f"healthy: the {1 - spec.alpha:.0%} confidence sequence for {what} is "
        f"[{interval.low:.6g}, {interval.high:.6g}], which does not exclude {against:g}"
    )
    return GuardrailState(
        HEALTHY, decision, *shown, samples=samples, threshold=spec.threshold, test=test
    )


def _total(spec: GuardrailSpec, arm: stats.Arm, samples: dict[str, int]) -> GuardrailState:
    """A total (sum or count) over the window against an absolute cap: a fact, not an
    estimate, so no interval and no minimum sample."""
    value = arm.total if spec.aggregation == "sum" else float(arm.n)
    test = {"name": "total over the window against a cap"}
    if arm.n == 0:
        return GuardrailState(
            NO_DATA,
            "no summaries in the window",
            samples=samples,
            threshold=spec.threshold,
            test=test,
        )
    over = value > spec.threshold if spec.direction == "higher_is_worse" else value < spec.threshold
    word = "breached" if over else "healthy"
    return GuardrailState(
        BREACHED if over else HEALTHY,
        f"{word}: the {spec.aggregation} of {spec.metric!r} in the window is {value:g} "
        f"(cap {spec.threshold:g})",
        estimate=value, low=value, high=value, samples=samples, threshold=spec.threshold, test=test,
    )  # fmt: skip


def _cohort_caps(spec: GuardrailSpec, rows: list[Summary]) -> GuardrailState:
    """A cap per cohort value: breached for the values over it, healthy for the rest."""
    totals: dict[str, float] = {}
    for r in rows:
        if r.cohort == "":
            continue
        add = r.total if spec.aggregation == "sum" else float(r.count)
        totals[r.cohort] = totals.get(r.cohort, 0.0) + add
    test = {"name": f"total per {spec.per} over the window against a cap"}
    samples = {"cohorts": len(totals)}
    if not totals:
        return GuardrailState(
            NO_DATA,
            f"no per-{spec.per} summaries in the window",
            samples=samples,
            threshold=spec.threshold,
            test=test,
        )
    if spec.direction == "higher_is_worse":
        over = sorted((c, v) for c, v in totals.items() if v > spec.threshold)
    else:
        over = sorted((c, v) for c, v in totals.items() if v < spec.threshold)
    top = max(totals.values())
    if not over:
        return GuardrailState(
            HEALTHY,
            f"healthy: every {spec.per} within the cap of {spec.threshold:g} (highest {top:g})",
            estimate=top, low=top, high=top, samples=samples, threshold=spec.threshold, test=test,
        )  # fmt: skip
    named = ", ".join(f"{c}={v:g}" for c, v in over[:10])
    return GuardrailState(
        BREACHED,
        f"breached for {len(over)} {spec.per} value(s) over the cap of {spec.threshold:g}: {named}",
        estimate=top, low=top, high=top, samples=samples, threshold=spec.threshold, test=test,
        cohorts=tuple(over),
    )  # fmt: skip


def evaluate_values(
    spec: GuardrailSpec,
    values: dict[str | None, float],
    samples: dict[str | None, float] | None,
    *,
    generated: Iterable[str],
    stable: str,
) -> GuardrailState:
    """The state of a Prometheus-sourced guardrail from its query's answer.

    ``values`` is ``{None: value}`` for a query without a variation label, else one value
    per variation; ``samples`` is the sample query's answer in the same shape (``None``:
    no sample query). Prometheus has already aggregated the window, so the values are
    compared as they are — absolute against the threshold, or the generated variation
    against the stable one scaled by the margin — and with a sample query, an arm under
    ``min_sample`` is ``insufficient_data``: it neither triggers nor clears.
    """
    test: dict[str, Any] = {"name": "Prometheus query against a threshold", "query": spec.query}
    if spec.sample_query is not None:
        test["sample_query"] = spec.sample_query
    if spec.variation_label is None:
        arms: dict[str, str | None] = {"value": None}
    else:
        names = sorted(set(generated)) or sorted(
            str(v) for v in values if v is not None and v != stable
        )
        arms = {name: name for name in names}
        if spec.comparison == "regression":
            arms[stable] = stable
    counts = (
        {label: int((samples or {}).get(key, 0)) for label, key in arms.items()}
        if samples is not None
        else {}
    )
    found = {label: values[key] for label, key in arms.items() if key in values}
    if not found or (spec.comparison == "regression" and stable not in found):
        missing = ", ".join(label for label in arms if label not in found) or "every series"
        return GuardrailState(
            NO_DATA, f"the query returned no value for {missing}",
            samples=counts, threshold=spec.threshold, test=test,
        )  # fmt: skip
    short = [f"{k}: {n} < {spec.min_sample}" for k, n in counts.items() if n < spec.min_sample]
    if spec.comparison == "regression":
        scale = (
            1.0 + spec.threshold if spec.direction == "higher_is_worse" else 1.0 - spec.threshold
        )
        against = scale * found[stable]
        test["name"] = "Prometheus query: generated against the stable variation"
        test["scale"] = scale
        under = {k: v for k, v in found.items() if k != stable}
        what = f"{scale:g} x {stable} ({found[stable]:g})"
    else:
        against = spec.threshold
        under = found
        what = f"the threshold {against:g}"
    if not under:
        return GuardrailState(
            NO_DATA, "the query returned no value for the generated variation",
            samples=counts, threshold=spec.threshold, test=test,
        )  # fmt: skip
    worst_key = (max if spec.direction == "higher_is_worse" else min)(under, key=under.__getitem__)
    worst = under[worst_key]
    test["values"] = {k: found[k] for k in sorted(found)}
    if short:
        return GuardrailState(
            INSUFFICIENT, f"too few samples to decide ({'; '.join(short)})", estimate=worst,
            low=worst, high=worst, samples=counts, threshold=spec.threshold, test=test,
        )  # fmt: skip
    over = worst > against if spec.direction == "higher_is_worse" else worst < against
    side = "above" if spec.direction == "higher_is_worse" else "below"
    metric = f"{spec.aggregation} of {spec.metric!r}"
    if over:
        decision = f"breached: {metric} for {worst_key} is {worst:g}, {side} {what}"
    else:
        decision = f"healthy: {metric} is {worst:g} at worst, not {side} {what}"
    return GuardrailState(
        BREACHED if over else HEALTHY, decision, estimate=worst, low=worst, high=worst,
        samples=counts, threshold=spec.threshold, test=test,
    )  # fmt: skip
