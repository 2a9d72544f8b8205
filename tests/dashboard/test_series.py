"""The charts per variation as data: known inputs, exact series (no browser, no database)."""

from __future__ import annotations

from typing import Any

import pytest

from lockgate.control.evidence import variations
from lockgate.dashboard import series

T0 = 1_796_644_800  # 2026-12-07T12:00:00Z, the start of an hour and of a slot


def test_exposure_is_summed_per_bucket_and_variation_with_zeros_and_the_default_last() -> None:
    counts: list[tuple[int, str | None, int]] = [
        (T0, "off", 10),
        (T0, "full", 3),
        (T0 + 3600, "off", 5),
        (T0 + 3 * 3600, None, 2),
        (T0 + 3 * 3600, "beta", 1),  # seen, not declared: after the declared ones
        (T0 - 3600, "off", 99),  # before the range: left out
        (T0 - 3600, "gone", 7),  # only before the range: no series
    ]
    chart = series.exposure_chart(counts, ["off", "observe", "full"], T0, T0 + 4 * 3600, 3600)
    assert chart.document() == {
        "times": [T0, T0 + 3600, T0 + 7200, T0 + 10800],
        "series": [
            {"label": "off", "kind": "line", "values": [10, 5, 0, 0]},
            {"label": "full", "kind": "line", "values": [3, 0, 0, 0]},
            {"label": "beta", "kind": "line", "values": [0, 0, 0, 1]},
            {"label": "(caller's default)", "kind": "line", "values": [0, 0, 0, 2]},
        ],
        "totals": {"off": 15, "full": 3, "beta": 1, "(caller's default)": 2},
    }
    assert chart.rows()[0] == (T0, [10, 3, 0, 0])


def test_hours_add_up_into_wider_buckets() -> None:
    counts: list[tuple[int, str | None, int]] = [(T0 + h * 3600, "on", h + 1) for h in range(12)]
    chart = series.exposure_chart(counts, ["on", "off"], T0, T0 + 12 * 3600, 6 * 3600)
    assert [(s.label, s.values) for s in chart.series] == [("on", [21, 57])]  # off: none


@pytest.mark.parametrize(
    ("span", "step"),
    [pytest.param(86400, 900, id="24h"), pytest.param(7 * 86400, 3600, id="7d"),
     pytest.param(30 * 86400, 13500, id="30d")],
)  # fmt: skip
def test_a_guardrail_chart_has_at_most_200_points(span: int, step: int) -> None:
    assert variations.guardrail_step(span) == step
    assert span // step <= variations.MAX_POINTS


def _row(slot: int, state: str, full: float | None, off: float, **extra: Any) -> dict[str, Any]:
    arms: dict[str, Any] = {"off": {"n": 1000, "value": off, "role": "control"}}
    if full is not None:
        arms["full"] = {"n": 1000, "value": full, "role": "treatment"}
    return {"slot": slot, "state": state, "arms": arms, "threshold": 0.1, "boundary": 0.0,
            "scale": 1.1, "estimate": 0.01, "low": -0.01, "high": 0.03} | extra  # fmt: skip


def test_a_regression_charts_control_first_its_limit_and_the_interval_against_zero() -> None:
    history = [
        _row(T0, "insufficient_data", None, 0.02),
        _row(T0 + 900, "healthy", 0.021, 0.02),
        _row(T0 + 1800, "breached", 0.05, 0.02, estimate=0.028, low=0.012, high=0.044),
    ]
    guardrail = {"threshold": 0.1, "history": history}
    metric, interval = series.guardrail_charts(guardrail, 86400)
    assert metric.times == [T0, T0 + 900, T0 + 1800]
    assert [(s.label, s.kind) for s in metric.series] == [
        ("off", "line"), ("full", "line"), ("threshold", "limit"),
    ]  # fmt: skip
    assert metric.series[1].values == [None, 0.021, 0.05]
    assert metric.series[2].values == pytest.approx([0.022, 0.022, 0.022])
    assert metric.notes == {"states": ["insufficient_data", "healthy", "breached"]}
    assert interval.document()["series"] == [
        {"label": "estimate", "kind": "estimate", "values": [0.01, 0.01, 0.028]},
        {"label": "interval low", "kind": "low", "values": [-0.01, -0.01, 0.012]},
        {"label": "interval high", "kind": "high", "values": [0.03, 0.03, 0.044]},
        {"label": "judged against", "kind": "limit", "values": [0.0, 0.0, 0.0]},
    ]


def test_the_last_evaluation_of_each_point_is_kept_over_a_week() -> None:
    history = [
        _row(T0, "healthy", 0.02, 0.02),
        _row(T0 + 900, "healthy", 0.03, 0.02),
        _row(T0 + 2700, "breached", 0.04, 0.02),  # the same hour: the last wins
        _row(T0 + 3600, "healthy", 0.01, 0.02),
    ]
    metric, _ = series.guardrail_charts({"history": history}, 7 * 86400)
    assert metric.times == [T0 + 2700, T0 + 3600]
    assert metric.series[1].values == [0.04, 0.01]


def test_an_absolute_guardrail_draws_its_threshold_and_a_regression_without_control_none() -> None:
    absolute = _row(T0, "healthy", 180.0, 0.0, scale=None, threshold=250.0, boundary=250.0)
    metric, interval = series.guardrail_charts({"history": [absolute]}, 86400)
    assert metric.series[-1].values == [250.0]
    assert interval.series[-1].values == [250.0]
    lonely = _row(T0, "no_data", 0.02, 0.0) | {"arms": {"full": {"n": 5, "value": 0.02}}}
    metric, _ = series.guardrail_charts({"history": [lonely]}, 86400)
    assert [(s.label, s.values) for s in metric.series] == [
        ("full", [0.02]), ("threshold", [None]),
    ]  # fmt: skip


def test_no_history_means_no_points() -> None:
    metric, interval = series.guardrail_charts({"history": []}, 86400)
    assert (metric.times, interval.times) == ([], [])
    assert [s.label for s in metric.series] == ["threshold"]
