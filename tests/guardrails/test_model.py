"""Reading guardrail and plan definitions: every bad field named."""

from __future__ import annotations

import pytest

from lockgate.errors import InvalidInput
from lockgate.guardrails.model import parse_duration, read_guardrail, read_plan


def _fields(data: object, reader: object = read_guardrail) -> set[str]:
    with pytest.raises(InvalidInput) as caught:
        reader(data)  # type: ignore[operator]
    return {p.field for p in caught.value.problems}


def test_defaults_are_a_rate_regression_that_pauses() -> None:
    spec = read_guardrail({"key": "e", "flag": "f", "environment": "p", "metric": "error"})
    assert (spec.aggregation, spec.comparison, spec.action) == ("rate", "regression", "pause")
    assert spec.window == 3600
    assert spec.min_sample == 1000


def test_bad_guardrail_fields_are_named() -> None:
    found = _fields(
        {"key": "bad key", "flag": "f", "environment": "p", "metric": "$exposure",
         "aggregation": "p99", "window": "soon", "action": "exclude", "alpha": 2, "extra": 1}
    )  # fmt: skip
    assert found == {"key", "metric", "aggregation", "window", "action", "alpha", "extra"}


def test_a_cap_per_cohort_must_be_absolute() -> None:
    assert "per" in _fields(
        {"key": "c", "flag": "f", "environment": "p", "metric": "cost", "aggregation": "rate",
         "comparison": "regression", "per": "account"}
    )  # fmt: skip


def test_durations() -> None:
    assert parse_duration("15m") == 900
    assert parse_duration("1d") == 86400
    assert parse_duration("0m") is None


def test_a_plan_reads_its_stages() -> None:
    plan = read_plan(
        {"flag": "f", "environment": "p", "variation": "full",
         "stages": [{"clauses": [{"attribute": "email", "op": "ends_with", "values": ["@x.io"]}],
                     "percent": 100, "min_hold": "10m"},
                    {"percent": 5, "min_hold": "1h", "min_sample": 2000},
                    {"percent": 25, "approval": True}, {"percent": 100}]}
    )  # fmt: skip
    assert [s.name for s in plan.stages] == ["audience 100%", "5%", "25%", "100%"]
    assert plan.stages[1].min_hold == 3600
    assert plan.stages[2].approval


def test_a_plan_never_narrows_and_names_bad_stages() -> None:
    found = _fields(
        {
            "flag": "f",
            "environment": "p",
            "variation": "full",
            "stable": "full",
            "stages": [{"percent": 50}, {"percent": 10}, {"percent": 0}, "x"],
        },
        read_plan,
    )
    assert found == {"stable", "stages[1].percent", "stages[2].percent", "stages[3]"}


PROM = {
    "key": "p99",
    "flag": "f",
    "environment": "p",
    "metric": "latency",
    "data_source": "prometheus",
}


def test_a_prometheus_guardrail_reads_its_query_and_label() -> None:
    spec = read_guardrail(
        PROM | {"query": "histogram_quantile(0.99, rate(x_bucket[5m]))", "aggregation": "p99",
                "variation_label": "variant", "threshold": 0.2, "min_sample": 10}
    )  # fmt: skip
    assert spec.prometheus
    assert not spec.statistical
    assert (spec.aggregation, spec.comparison) == ("p99", "regression")
    assert spec.document()["variation_label"] == "variant"
    absolute = read_guardrail(PROM | {"query": "sum(errors)", "threshold": 5})
    assert absolute.comparison == "absolute"


def test_bad_prometheus_fields_are_named() -> None:
    assert _fields(PROM) == {"query"}
    assert _fields(PROM | {"query": "x", "variation_label": "bad label"}) == {"variation_label"}
    assert _fields(PROM | {"query": "x", "comparison": "regression"}) == {"variation_label"}
    assert _fields(PROM | {"query": "x" * 5000, "sample_query": "\x00"}) == {
        "query",
        "sample_query",
    }
    assert "per" in _fields(PROM | {"query": "x", "per": "account"})
    plain = {"key": "e", "flag": "f", "environment": "p", "metric": "error"}
    assert _fields(plain | {"query": "sum(x)", "variation_label": "v"}) == {
        "query",
        "variation_label",
    }
