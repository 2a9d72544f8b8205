"""Guardrails that read Prometheus: the cycle against a real Prometheus server scraping
an exporter the tests run (``tests/control/conftest.py``), acting with the query's values
as evidence."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from lockgate.control.base import Services
from lockgate.control.configuration import flags as flag_use
from lockgate.control.configuration import snapshots
from lockgate.control.guardrails import cycle
from lockgate.control.guardrails import definitions as guard_use
from lockgate.store.tables import audit_log
from tests.control.conftest import Prometheus, free_port
from tests.control.guardrails.helpers import ADMIN, environment_id, setup

RATIO = {
    "metric": "assistant_errors",
    "data_source": "prometheus",
    "query": "max by (variant) (assistant_errors_ratio)",
    "variation_label": "variant",
    "variation": "full",
    "stable": "off",
    "threshold": 0.5,
    "action": "fallback",
}
ROOT = "ai_generated_software_control"
PLAN = {"variation": "full", "stable": "off", "stages": [{"percent": 5}, {"percent": 100}]}


def _state(services: Services, key: str) -> dict[str, Any]:
    found = guard_use.get_guardrail(services, ADMIN, "shop", "assistant", "prod", key)
    evaluation: dict[str, Any] = found["evaluation"]
    return evaluation


def _put(services: Services, key: str, definition: dict[str, Any]) -> None:
    guard_use.put_guardrail(services, ADMIN, "shop", "assistant", "prod", key, definition)


def test_a_regression_read_from_prometheus_serves_the_fallback_with_its_values(
    services: Services, prometheus: Prometheus
) -> None:
    setup(services)
    services.prometheus_url = prometheus.url
    _put(services, "errors", RATIO)
    guard_use.put_plan(services, ADMIN, "shop", "assistant", "prod", PLAN)
    result = cycle.run_cycle(services)
    assert result.breached == 1
    state = _state(services, "errors")
    assert state["state"] == "breached"
    assert state["test"]["values"] == {"full": 0.09, "off": 0.02}
    with services.view() as conn:
        [breach] = conn.execute(
            select(audit_log).where(audit_log.c.action == "guardrail:breached")
        ).all()
    assert breach.actor_id == cycle.ACTOR
    assert breach.evidence["test"]["query"] == RATIO["query"]
    assert breach.evidence["estimate"] == 0.09
    config = flag_use.get_flag_config(services, ADMIN, "shop", "assistant", "prod")
    assert (config["on"], config["default"]) == (True, {"variation": "off"})  # the fallback
    assert config["updated_by"] == cycle.ACTOR
    plan = guard_use.get_plan(services, ADMIN, "shop", "assistant", "prod")
    assert (plan["status"], plan["stage"]) == ("paused", -1)  # never advanced
    with services.view() as conn:  # SDKs do not track what Prometheus measures
        assert "metrics" not in snapshots.build_snapshot(conn, environment_id(services))


def test_healthy_and_insufficient_states_from_prometheus(
    services: Services, prometheus: Prometheus
) -> None:
    setup(services)
    services.prometheus_url = prometheus.url
    _put(
        services,
        "volume",
        {"metric": "requests", "data_source": "prometheus", "threshold": 1e6,
         "query": "sum(assistant_requests_total)"},
    )  # fmt: skip
    _put(
        services,
        "sampled",
        RATIO | {"sample_query": "sum by (variant) (assistant_requests_total)",
                 "min_sample": 1000},
    )  # fmt: skip
    cycle.run_cycle(services)
    volume = _state(services, "volume")
    assert volume["state"] == "healthy"
    assert volume["estimate"] == 50_400
    sampled = _state(services, "sampled")
    assert sampled["state"] == "insufficient_data"  # 400 requests on the generated path
    assert sampled["samples"] == {"full": 400, "off": 50_000}


def test_an_unreachable_or_unconfigured_prometheus_is_no_data_and_never_acts(
    services: Services,
) -> None:
    setup(services)
    _put(services, "errors", RATIO)
    cycle.run_cycle(services)
    assert "prometheus_url" in _state(services, "errors")["decision"]
    services.prometheus_url = f"http://127.0.0.1:{free_port()}"
    services.prometheus_timeout = 1.0
    result = cycle.run_cycle(services)
    state = _state(services, "errors")
    assert state["state"] == "no_data"
    assert "could not be reached" in state["decision"]
    assert result.actions == 0
    config = flag_use.get_flag_config(services, ADMIN, "shop", "assistant", "prod")
    assert config["on"] is False


CONTRACT = """
ai_generated_software_control:
  behavior: "Generated replies"
  key: reply-bot
  kind: model_route
  owner: support-platform
  risk_level: low
  default_state: "off"
  allowed_modes: ["off", full]
  rollback_action: {description: "serve the hand-written reply", variation: "off"}
  guardrails:
    - metric: assistant_errors
      aggregation: p99
      comparison: regression
      threshold: 0.5
      action: fallback
      prometheus:
        query: "max by (variant) (assistant_errors_ratio)"
        variation_label: variant
  rollout_stages:
    - {audience: everyone, mode: full, percent: 5}
    - {audience: everyone, mode: full}
  environments:
    prod: {state: everyone, mode: "off"}
"""


def test_a_contract_guardrail_reads_prometheus(services: Services, prometheus: Prometheus) -> None:
    from lockgate.control.configuration import contracts as contract_use
    from lockgate.control.configuration import projects as project_use
    from lockgate.control.contract_yaml import explain_contract

    project_use.create_project(services, ADMIN, "shop", "Shop")
    project_use.create_environment(services, ADMIN, "shop", "prod")
    services.prometheus_url = prometheus.url
    explained = explain_contract(CONTRACT, "reply.yaml")
    traces = [t for t in explained["lines"] if t["field"] == "guardrails[0]"]
    assert any(t["status"] == "enforced" and "read from Prometheus" in t["by"] for t in traces), (
        traces
    )
    contract_use.apply_contract(services, ADMIN, "shop", CONTRACT, "reply.yaml")
    listed = guard_use.list_guardrails(services, ADMIN, "shop", "reply-bot", "prod")
    [guard] = listed["items"]
    assert (guard["data_source"], guard["aggregation"]) == ("prometheus", "p99")
    assert guard["variation_label"] == "variant"
    cycle.run_cycle(services)
    state = guard_use.get_guardrail(services, ADMIN, "shop", "reply-bot", "prod", guard["key"])
    assert state["evaluation"]["state"] == "breached"
    assert state["evaluation"]["test"]["values"] == {"full": 0.09, "off": 0.02}


def test_a_contract_prometheus_block_without_a_query_is_named() -> None:
    from lockgate.control.contract_yaml import check_contract

    broken = CONTRACT.replace(
        'query: "max by (variant) (assistant_errors_ratio)"', "sample_query: up"
    ).replace("variation_label: variant", "extra: 1")
    result = check_contract(broken, "reply.yaml")
    assert result["valid"] is False
    fields = {p["field"] for p in result["problems"]}
    assert f"{ROOT}.guardrails[0].prometheus.query" in fields
    assert f"{ROOT}.guardrails[0].prometheus.extra" in fields
