"""What a guardrail evaluation keeps per variation, and the lines it is judged against."""

from __future__ import annotations

from typing import Any

import pytest

from lockgate.guardrails import arms
from lockgate.guardrails.evaluate import Summary
from lockgate.guardrails.model import read_guardrail

SUMMARIES = [  # variation, cohort, count, total, total_sq, exposures
    Summary("off", "", 40, 40.0, 40.0, 2000),
    Summary("full", "", 30, 60.0, 150.0, 1000),
    Summary("full", "acme", 10, 10.0, 10.0, 100),  # a cohort row: left out
    Summary("beta", "", 0, 0.0, 0.0, 0),
]


def _spec(**fields: Any) -> Any:
    return read_guardrail({"key": "g", "metric": "error", **fields}, flag="f", environment="e")


@pytest.mark.parametrize(
    ("aggregation", "values"),
    [
        pytest.param("rate", {"beta": None, "full": 0.06, "off": 0.02}, id="rate-per-exposure"),
        pytest.param("mean", {"beta": None, "full": 2.0, "off": 1.0}, id="mean-per-value"),
        pytest.param("sum", {"beta": 0.0, "full": 60.0, "off": 40.0}, id="sum"),
        pytest.param("count", {"beta": 0.0, "full": 30.0, "off": 40.0}, id="count"),
    ],
)
def test_the_metric_of_each_variation_as_the_guardrail_aggregates_it(
    aggregation: str, values: dict[str, float | None]
) -> None:
    extra = {} if aggregation in ("rate", "mean") else {"comparison": "absolute", "threshold": 9}
    spec = _spec(aggregation=aggregation, **extra)
    found = arms.arm_values(spec, SUMMARIES, generated=["full"], stable="off")
    assert {k: v["value"] for k, v in found.items()} == values
    assert {k: v["role"] for k, v in found.items()} == {
        "beta": None, "full": "treatment", "off": "control",
    }  # fmt: skip
    n = {"beta": 0, "full": 1000, "off": 2000} if aggregation == "rate" else {
        "beta": 0, "full": 30, "off": 40,
    }  # fmt: skip
    assert {k: v["n"] for k, v in found.items()} == n


@pytest.mark.parametrize(
    ("fields", "boundary", "scale"),
    [
        pytest.param({"threshold": 0.1}, 0.0, 1.1, id="regression-higher-is-worse"),
        pytest.param({"threshold": 0.1, "direction": "lower_is_worse"}, 0.0, 0.9,
                     id="regression-lower-is-worse"),
        pytest.param({"comparison": "absolute", "threshold": 250.0, "aggregation": "mean"},
                     250.0, None, id="absolute"),
        pytest.param({"comparison": "absolute", "threshold": 50.0, "aggregation": "sum",
                      "per": "account"}, 50.0, None, id="cap-per-cohort"),
        pytest.param({"data_source": "prometheus", "query": "sum by (v) (rate(errors[5m]))",
                      "variation_label": "v", "comparison": "regression", "threshold": 0.1},
                     None, 1.1, id="prometheus-regression"),
    ],
)  # fmt: skip
def test_the_line_each_kind_of_guardrail_is_judged_against(
    fields: dict[str, Any], boundary: float | None, scale: float | None
) -> None:
    spec = _spec(**fields)
    assert arms.boundary(spec) == boundary
    assert arms.limit_scale(spec) == pytest.approx(scale)


def test_a_prometheus_guardrail_keeps_its_query_values() -> None:
    test = {"values": {"off": 0.02, "full": 0.05, "beta": 0.01}}
    assert arms.prometheus_arms(test, ["full"], "off") == {
        "beta": {"n": None, "value": 0.01, "role": None},
        "full": {"n": None, "value": 0.05, "role": "treatment"},
        "off": {"n": None, "value": 0.02, "role": "control"},
    }
    assert arms.prometheus_arms({"values": {"value": 3.0}}) == {
        "value": {"n": None, "value": 3.0, "role": "treatment"}
    }
    assert arms.prometheus_arms({}) == {}
