"""The guardrail state function: summaries in, state and evidence out."""

from __future__ import annotations

import pytest

from lockgate.guardrails.evaluate import (
    BREACHED,
    HEALTHY,
    INSUFFICIENT,
    NO_DATA,
    Summary,
    evaluate,
    evaluate_values,
)
from lockgate.guardrails.model import read_guardrail

BASE = {"key": "errors", "flag": "checkout", "environment": "production", "metric": "error"}


def _rate(variation: str, exposures: int, errors: int, cohort: str = "") -> Summary:
    return Summary(variation, cohort, errors, float(errors), float(errors), exposures)


def test_no_rows_is_no_data() -> None:
    spec = read_guardrail(BASE)
    state = evaluate(spec, [], generated=["full"], stable="off")
    assert state.state == NO_DATA
    assert state.estimate is None


def test_a_regression_below_the_minimum_sample_never_triggers() -> None:
    spec = read_guardrail(BASE | {"min_sample": 1000})
    rows = [_rate("full", 500, 100), _rate("off", 500, 5)]  # 20 % against 1 %
    state = evaluate(spec, rows, generated=["full"], stable="off")
    assert state.state == INSUFFICIENT
    assert state.samples == {"full": 500, "off": 500}
    assert "full: 500 < 1000" in state.decision


def test_a_clear_regression_with_enough_data_is_breached_with_its_evidence() -> None:
    spec = read_guardrail(BASE | {"min_sample": 1000})
    rows = [_rate("full", 20_000, 800), _rate("off", 20_000, 400)]
    state = evaluate(spec, rows, generated=["full"], stable="off")
    assert state.state == BREACHED
    assert state.estimate == pytest.approx(0.02)
    assert state.low is not None
    assert state.low > 0
    doc = state.document()
    assert doc["samples"] == {"full": 20_000, "off": 20_000}
    assert doc["test"]["alpha"] == 0.05
    assert doc["interval"][0] == state.low


def test_equal_rates_with_enough_data_are_healthy() -> None:
    spec = read_guardrail(BASE | {"min_sample": 1000})
    rows = [_rate("full", 20_000, 400), _rate("off", 20_000, 410)]
    assert evaluate(spec, rows, generated=["full"], stable="off").state == HEALTHY


def test_a_margin_tolerates_a_small_regression() -> None:
    rows = [_rate("full", 50_000, 1100), _rate("off", 50_000, 1000)]  # 10 % worse
    strict = read_guardrail(BASE | {"min_sample": 1000})
    lenient = read_guardrail(BASE | {"min_sample": 1000, "threshold": 0.5})
    assert evaluate(lenient, rows, generated=["full"], stable="off").state == HEALTHY
    assert evaluate(strict, rows, generated=["full"], stable="off").state in (HEALTHY, BREACHED)


def test_lower_is_worse_breaches_on_a_drop() -> None:
    spec = read_guardrail(BASE | {"metric": "conversion", "direction": "lower_is_worse"})
    rows = [_rate("full", 20_000, 1000), _rate("off", 20_000, 2000)]
    assert evaluate(spec, rows, generated=["full"], stable="off").state == BREACHED


def test_an_absolute_mean_threshold() -> None:
    spec = read_guardrail(
        BASE | {"metric": "latency", "aggregation": "mean", "comparison": "absolute",
                "threshold": 200.0, "min_sample": 100}
    )  # fmt: skip
    slow = Summary("full", "", 1000, 300_000.0, 1000 * 300.0**2 + 1000 * 100.0, 1000)
    assert evaluate(spec, [slow], generated=["full"], stable="off").state == BREACHED
    fast = Summary("full", "", 1000, 100_000.0, 1000 * 100.0**2 + 1000 * 100.0, 1000)
    assert evaluate(spec, [fast], generated=["full"], stable="off").state == HEALTHY


def test_a_cohort_cap_names_only_the_cohorts_over_it() -> None:
    spec = read_guardrail(
        BASE | {"metric": "llm_cost", "aggregation": "sum", "comparison": "absolute",
                "threshold": 50.0, "per": "account", "window": "1d", "action": "fallback"}
    )  # fmt: skip
    rows = [
        Summary("full", "acme", 10, 30.0, 0.0, 0),
        Summary("full", "acme", 10, 30.0, 0.0, 0),
        Summary("full", "globex", 10, 20.0, 0.0, 0),
        Summary("full", "", 30, 80.0, 0.0, 0),  # the population row is not a cohort
    ]
    state = evaluate(spec, rows, generated=["full"], stable="off")
    assert state.state == BREACHED
    assert state.cohorts == (("acme", 60.0),)
    assert state.samples == {"cohorts": 2}


def test_a_total_cap_without_cohorts_is_a_fact_not_an_estimate() -> None:
    spec = read_guardrail(
        BASE | {"metric": "refunds", "aggregation": "count", "comparison": "absolute",
                "threshold": 3}
    )  # fmt: skip
    rows = [Summary("full", "", 4, 4.0, 4.0, 0)]
    state = evaluate(spec, rows, generated=["full"], stable="off")
    assert state.state == BREACHED
    assert state.estimate == 4.0


PROM = BASE | {"data_source": "prometheus", "query": "sum by (variant) (rate(errors[5m]))"}


def test_a_prometheus_regression_against_the_stable_variation() -> None:
    spec = read_guardrail(PROM | {"variation_label": "variant", "threshold": 0.5})
    breached = evaluate_values(
        spec, {"full": 0.09, "off": 0.02}, None, generated=["full"], stable="off"
    )
    assert breached.state == BREACHED
    assert breached.estimate == pytest.approx(0.09)
    assert breached.test["values"] == {"full": 0.09, "off": 0.02}
    assert "1.5 x off" in breached.decision
    healthy = evaluate_values(
        spec, {"full": 0.025, "off": 0.02}, None, generated=["full"], stable="off"
    )
    assert healthy.state == HEALTHY
    missing = evaluate_values(spec, {"full": 0.09}, None, generated=["full"], stable="off")
    assert missing.state == NO_DATA
    assert "off" in missing.decision


def test_a_prometheus_sample_query_below_the_minimum_never_decides() -> None:
    spec = read_guardrail(
        PROM | {"variation_label": "variant", "sample_query": "q", "min_sample": 1000}
    )
    values: dict[str | None, float] = {"full": 0.5, "off": 0.01}
    short = evaluate_values(
        spec, values, {"full": 400, "off": 50_000}, generated=["full"], stable="off"
    )
    assert short.state == INSUFFICIENT
    assert short.samples == {"full": 400, "off": 50_000}
    enough = evaluate_values(
        spec, values, {"full": 4000, "off": 50_000}, generated=["full"], stable="off"
    )
    assert enough.state == BREACHED


def test_a_prometheus_absolute_threshold_and_no_series() -> None:
    spec = read_guardrail(PROM | {"threshold": 0.05, "direction": "lower_is_worse"})
    assert evaluate_values(spec, {None: 0.01}, None, generated=[], stable="off").breached
    assert evaluate_values(spec, {None: 0.2}, None, generated=[], stable="off").state == HEALTHY
    assert evaluate_values(spec, {}, None, generated=[], stable="off").state == NO_DATA
