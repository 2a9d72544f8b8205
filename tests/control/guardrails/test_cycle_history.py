"""The cycle's history of each guardrail: one row per 15-minute slot (the last evaluation
in it), written with the state, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from lockgate.control.base import Services
from lockgate.control.guardrails import cycle
from lockgate.control.guardrails import definitions as guard_use
from lockgate.store.tables import guardrail_results
from tests.control.conftest import Prometheus
from tests.control.guardrails.helpers import ADMIN, START, add_summaries, setup

ERRORS = {"metric": "error", "min_sample": 1000, "window": "1h", "action": "notify",
          "threshold": 0.1}  # fmt: skip
SLOT = int(START.timestamp())  # 12:00 UTC starts a slot


def _history(services: Services) -> list[dict[str, Any]]:
    with services.view() as conn:
        rows = conn.execute(select(guardrail_results).order_by(guardrail_results.c.slot)).all()
    return [dict(r._mapping) for r in rows]


def test_each_slot_keeps_its_last_evaluation_with_the_metric_per_variation(
    services: Services,
) -> None:
    clock = setup(services)
    guard_use.put_guardrail(services, ADMIN, "shop", "assistant", "prod", "errors", ERRORS)
    add_summaries(services, clock, rows={"full": (4000, 160), "off": (4000, 80)})
    cycle.run_cycle(services)
    clock.advance(minutes=5)  # the same slot: replaced
    add_summaries(services, clock, rows={"full": (1000, 40), "off": (1000, 20)})
    cycle.run_cycle(services)
    clock.advance(minutes=15)  # the next slot
    cycle.run_cycle(services)
    history = _history(services)
    assert [(h["slot"], h["state"]) for h in history] == [
        (SLOT, "breached"),
        (SLOT + 900, "breached"),
    ]
    first = history[0]
    assert first["evaluated_at"] == "2026-12-07T12:05:00.000000Z"
    assert first["arms"] == {
        "full": {"n": 5000, "value": pytest.approx(0.04), "role": "treatment"},
        "off": {"n": 5000, "value": pytest.approx(0.02), "role": "control"},
    }
    assert (first["threshold"], first["boundary"], first["scale"]) == (0.1, 0.0, 1.1)
    assert first["estimate"] == pytest.approx(0.04 - 1.1 * 0.02)
    assert first["low"] < first["estimate"] < first["high"]
    assert first["low"] > 0.0  # breached: the interval lies entirely above the boundary


def test_an_absolute_guardrail_is_judged_against_its_threshold_and_old_slots_go(
    services: Services,
) -> None:
    clock = setup(services)
    latency = {
        "metric": "latency", "aggregation": "mean", "comparison": "absolute",
        "threshold": 250, "min_sample": 1000, "window": "1h", "action": "notify",
    }  # fmt: skip
    guard_use.put_guardrail(services, ADMIN, "shop", "assistant", "prod", "latency", latency)
    add_summaries(
        services, clock, metric="latency", rows={"full": (0, 2000)}, values={"full": 200.0}
    )
    cycle.run_cycle(services)
    (row,) = _history(services)
    assert (row["state"], row["boundary"], row["scale"]) == ("healthy", 250.0, None)
    assert row["arms"] == {"full": {"n": 2000, "value": pytest.approx(200.0), "role": "treatment"}}
    clock.advance(days=36)  # past the retention: the first slot is deleted
    cycle.run_cycle(services)
    assert [h["state"] for h in _history(services)] == ["no_data"]


def test_a_prometheus_guardrail_keeps_its_query_values_per_variation(
    services: Services, prometheus: Prometheus
) -> None:
    setup(services)
    services.prometheus_url = prometheus.url
    ratio = {
        "metric": "assistant_errors", "data_source": "prometheus",
        "query": "max by (variant) (assistant_errors_ratio)", "variation_label": "variant",
        "variation": "full", "stable": "off", "threshold": 0.5, "action": "notify",
    }  # fmt: skip
    guard_use.put_guardrail(services, ADMIN, "shop", "assistant", "prod", "errors", ratio)
    cycle.run_cycle(services)
    (row,) = _history(services)
    assert row["state"] == "breached"
    assert row["arms"] == {
        "full": {"n": None, "value": 0.09, "role": "treatment"},
        "off": {"n": None, "value": 0.02, "role": "control"},
    }
    assert (row["boundary"], row["scale"], row["estimate"]) == (None, 1.5, 0.09)
