"""A contract's ``tools:`` block: read with its lines, explained, planned and applied
through the governed tool registry (on SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from lockgate.contracts import contract_schema
from lockgate.control.contract_yaml import check_contract, explain_contract
from tests.api.helpers import add_principal, bearer

HEAD = """\
ai_generated_software_control:
  behavior: support agent
  key: support-agent
  owner: support
  risk_level: {risk}
  allowed_modes: [off, observe, approval_required, full]
  environments:
    production: off
"""
TOOLS = """\
  tools:
    - key: search-orders
      risk: read
      description: read an order
    - key: refund
      risk: irreversible
      budget: {calls: 20, window: 3600, per: account}
"""


def contract(risk: str = "low", tools: str = TOOLS) -> str:
    return HEAD.format(risk=risk) + tools


def test_tools_are_read_and_explained_line_by_line() -> None:
    result = check_contract(contract(), "agent.yaml")
    assert result["valid"], result
    lines: dict[str, Any] = {}
    for trace in explain_contract(contract())["lines"]:
        lines.setdefault(trace["field"], trace)
    assert lines["tools"]["status"] == "enforced"
    assert lines["tools[1]"]["line"] == 13
    assert "authorize_tool" in lines["tools[1]"]["by"]
    assert "call budget" in lines["tools[1]"]["by"]
    assert "tools" in contract_schema()["properties"]["ai_generated_software_control"]["properties"]


@pytest.mark.parametrize(
    ("tools", "field", "line"),
    [
        ("  tools:\n    - key: x\n      risk: nuclear\n", "tools[0].risk", 11),
        ("  tools:\n    - risk: read\n", "tools[0].key", 10),
        ("  tools:\n    - key: x\n      risk: read\n      budget: {calls: 0, window: 5}\n",
         "tools[0].budget.calls", 12),
        ("  tools:\n    - key: x\n      risk: read\n    - key: x\n      risk: draft\n",
         "tools[1].key", 12),
    ],
)  # fmt: skip
def test_bad_tools_name_the_field_and_line(tools: str, field: str, line: int) -> None:
    result = check_contract(contract(tools=tools), "agent.yaml")
    assert not result["valid"]
    found = [(p["field"], p["line"]) for p in result["problems"]]
    assert (f"ai_generated_software_control.{field}", line) in found, found


P = "/api/v1/projects/shop"


def _setup(client: TestClient, *, protected: bool) -> None:
    assert client.post("/api/v1/projects", json={"key": "shop"}).status_code == 201
    env = {"key": "production", "protected": protected}
    assert client.post(f"{P}/environments", json=env).status_code == 201


def _steps(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["target"]: s for s in result["steps"] if s["step"] == "tool"}


def test_a_low_risk_contract_registers_its_tools(client: TestClient) -> None:
    _setup(client, protected=False)
    body = {"source": contract(), "file": "agent.yaml"}
    planned = client.post(f"{P}/contracts/plan", json=body)
    assert planned.status_code == 200, planned.text
    assert _steps(planned.json())["tool 'refund'"]["outcome"] == "apply"
    assert client.get(f"{P}/tools").json()["items"] == []  # a plan writes nothing
    applied = client.post(f"{P}/contracts/apply", json=body)
    assert applied.status_code in (200, 202), applied.text
    assert {t: s["outcome"] for t, s in _steps(applied.json()).items()} == {
        "tool 'search-orders'": "applied",
        "tool 'refund'": "applied",
    }
    tools = {t["key"]: t for t in client.get(f"{P}/tools").json()["items"]}
    assert tools["refund"]["risk"] == "irreversible"
    assert tools["refund"]["budget"] == {"calls": 20, "window": 3600, "per": "account"}
    again = client.post(f"{P}/contracts/apply", json=body)
    assert {s["outcome"] for s in _steps(again.json()).values()} == {"unchanged"}


def test_a_high_risk_contract_proposes_its_tools(client: TestClient, services: Any) -> None:
    _setup(client, protected=True)
    body = {"source": contract("high"), "file": "agent.yaml"}
    applied = client.post(f"{P}/contracts/apply", json=body)
    assert applied.status_code == 202, applied.text
    refund = _steps(applied.json())["tool 'refund'"]
    assert refund["outcome"] == "change_request"
    again = client.post(f"{P}/contracts/apply", json=body)
    assert _steps(again.json())["tool 'refund'"] == {
        "step": "tool",
        "target": "tool 'refund'",
        "outcome": "pending",
        "change_request": refund["change_request"],
    }
    approver = add_principal(services, "ava", [("shop", "approver")])
    for verb in ("approve", "apply"):
        r = client.post(
            f"/api/v1/change-requests/{refund['change_request']}/{verb}",
            json={},
            headers=bearer(approver),
        )
        assert r.status_code == 200, r.text
    assert client.get(f"{P}/tools/refund").json()["risk"] == "irreversible"


def test_an_exported_contract_keeps_its_tools_and_plans_no_change(client: TestClient) -> None:
    _setup(client, protected=False)
    body = {"source": contract(), "file": "agent.yaml"}
    assert client.post(f"{P}/contracts/apply", json=body).status_code in (200, 202)
    exported = client.get(f"{P}/flags/support-agent/contract").json()["contract"]
    assert '    - key: "refund"\n      risk: "irreversible"\n' in exported
    assert '      budget: {calls: 20, window: 3600, per: "account"}\n' in exported
    assert '      description: "read an order"\n' in exported
    again = {"source": exported, "file": "exported.yaml"}
    planned = client.post(f"{P}/contracts/plan", json=again).json()
    outcomes = {(s["step"], s["target"]): s["outcome"] for s in planned["steps"]}
    # another text is another contract version (a reduction: it loosens nothing) ...
    assert outcomes.pop(("contract", "flag 'support-agent'")) == "apply"
    assert next(s for s in planned["steps"] if s["step"] == "contract")["reasons"] == []
    # ... and nothing else changes: definition, environments and every tool as they are
    assert set(outcomes.values()) == {"unchanged"}, planned
    assert ("tool", "tool 'refund'") in outcomes
    assert ("tool", "tool 'search-orders'") in outcomes
    # once that text is applied, exporting gives it back and planning it changes nothing
    assert client.post(f"{P}/contracts/apply", json=again).status_code == 200
    assert client.get(f"{P}/flags/support-agent/contract").json()["contract"] == exported
    settled = client.post(f"{P}/contracts/plan", json=again).json()
    assert {s["outcome"] for s in settled["steps"]} == {"unchanged"}, settled
    assert settled["changes"] == 0
