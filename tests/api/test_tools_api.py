"""The tool registry and the tool policy through the real app, on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from lockgate.control.base import Services
from lockgate.store.tables import environments
from tests.api.helpers import add_principal, bearer

P = "/api/v1/projects/shop"
TOOLS = f"{P}/tools"


@pytest.fixture
def shop(client: TestClient, services: Services) -> dict[str, Any]:
    """Project shop: production protected, a high-risk mode behavior, an approver, a
    server SDK key."""
    assert client.post("/api/v1/projects", json={"key": "shop"}).status_code == 201
    env = {"key": "production", "protected": True}
    assert client.post(f"{P}/environments", json=env).status_code == 201
    flag = {"key": "agent", "kind": "mode", "risk_tier": "high", "reason": "generated"}
    assert client.post(f"{P}/flags", json=flag).status_code == 201
    segment = {"key": "eu", "rules": [{"id": "r", "clauses": [EU]}]}
    assert client.post(f"{P}/segments", json=segment).status_code == 201
    r = client.post(f"{P}/environments/production/sdk-keys", json={"kind": "server", "name": "web"})
    assert r.status_code == 201, r.text
    return {
        "sdk": bearer(r.json()["key"]),
        "approver": add_principal(services, "ava", [("shop", "approver")]),
        "editor": add_principal(services, "erin", [("shop", "editor")]),
    }


EU = {"attribute": "region", "op": "equals", "values": ["eu"]}


def _approve_and_apply(client: TestClient, request_id: int, token: str) -> Any:
    r = client.post(f"/api/v1/change-requests/{request_id}/approve", json={}, headers=bearer(token))
    assert r.status_code == 200, r.text
    r = client.post(f"/api/v1/change-requests/{request_id}/apply", json={}, headers=bearer(token))
    assert r.status_code == 200, r.text
    return r.json()


def _register(client: TestClient, shop: dict[str, Any], key: str, risk: str, **more: Any) -> Any:
    r = client.post(TOOLS, json={"key": key, "risk": risk, "reason": "needed", **more})
    assert r.status_code == 202, r.text  # an expansion under a high-risk, protected posture
    assert r.json()["policy"]["direction"] == "expansion"
    return _approve_and_apply(client, r.json()["id"], shop["approver"])["result"]


def _snapshot(client: TestClient, shop: dict[str, Any]) -> dict[str, Any]:
    """The served snapshot once the delivery hub has caught up with the database (it
    reloads after each commit, in the background)."""
    with client.app.state.services.view() as conn:  # type: ignore[attr-defined]
        want = conn.execute(select(func.max(environments.c.snapshot_version))).scalar_one()
    deadline = time.monotonic() + 10
    while True:
        r = client.get("/sdk/v1/snapshot", headers=shop["sdk"])
        assert r.status_code == 200, r.text
        if r.json()["version"] >= want or time.monotonic() > deadline:
            return dict(r.json())
        time.sleep(0.02)


def _actions(client: TestClient) -> list[str]:
    items = client.get("/api/v1/audit", params={"limit": 200}).json()["items"]
    return [item["action"] for item in items]


def test_registration_is_governed_and_reaches_the_snapshot(
    client: TestClient, shop: dict[str, Any]
) -> None:
    assert "tools" not in _snapshot(client, shop)
    budget = {"calls": 5, "window": 60, "per": "account"}
    tool = _register(client, shop, "refund", "irreversible", budget=budget)
    assert (tool["key"], tool["risk"], tool["version"]) == ("refund", "irreversible", 1)
    snapshot = _snapshot(client, shop)
    assert snapshot["tools"] == {"refund": {"risk": "irreversible", "version": 1, "budget": budget}}
    listed = client.get(TOOLS).json()
    assert [t["key"] for t in listed["items"]] == ["refund"]
    assert listed["policy"]["effective"]["high"]["full"]["irreversible"] == "approval_required"
    assert "tool:registered" in _actions(client)


def test_denying_a_tool_is_a_reduction_applied_at_once(
    client: TestClient, shop: dict[str, Any]
) -> None:
    _register(client, shop, "refund", "write")
    version_before = _snapshot(client, shop)["version"]
    r = client.post(
        f"{TOOLS}/refund/deny",
        json={"reason": "incident 7"},
        headers=bearer(shop["editor"]),
    )
    assert r.status_code == 200, r.text
    assert r.json()["deny"] == [{"id": "everyone", "clauses": []}]
    snapshot = _snapshot(client, shop)
    assert snapshot["version"] > version_before
    assert snapshot["tools"]["refund"]["deny"] == [{"id": "everyone", "clauses": []}]
    r = client.post(
        f"{TOOLS}/refund/deny",
        json={"id": "eu-only", "clauses": [{"op": "segment_match", "values": ["eu"]}]},
    )
    assert r.status_code == 200, r.text
    assert _actions(client)[:2] == ["tool:denied", "tool:denied"]


def test_lifting_a_denial_is_an_expansion(client: TestClient, shop: dict[str, Any]) -> None:
    _register(client, shop, "refund", "write")
    denied = client.post(f"{TOOLS}/refund/deny", json={"reason": "incident"})
    assert denied.status_code == 200, denied.text
    r = client.patch(
        f"{TOOLS}/refund",
        json={"deny": [], "reason": "fixed"},
        headers={"If-Match": f'"{denied.json()["version"]}"'},
    )
    assert r.status_code == 202, r.text
    assert r.json()["policy"]["reasons"] == ["removes or edits a denial"]
    applied = _approve_and_apply(client, r.json()["id"], shop["approver"])
    assert applied["result"]["deny"] == []


def test_raising_the_risk_class_applies_at_once_lowering_it_waits(
    client: TestClient, shop: dict[str, Any]
) -> None:
    tool = _register(client, shop, "mailer", "write")
    raised = client.patch(
        f"{TOOLS}/mailer",
        json={"risk": "external"},
        headers={"If-Match": f'"{tool["version"]}"'},
    )
    assert raised.status_code == 200, raised.text
    lowered = client.patch(
        f"{TOOLS}/mailer",
        json={"risk": "read", "reason": "it only reads"},
        headers={"If-Match": f'"{raised.json()["version"]}"'},
    )
    assert lowered.status_code == 202, lowered.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"key": "t", "risk": "nuclear"}, "risk", id="risk"),
        pytest.param({"key": "bad key", "risk": "read"}, "key", id="key"),
        pytest.param(
            {
                "key": "t",
                "risk": "read",
                "deny": [{"id": "d", "clauses": [{"attribute": "a", "op": "zz", "values": [1]}]}],
            },
            "deny[0].clauses[0].op",
            id="clause-op",
        ),
        pytest.param(
            {
                "key": "t",
                "risk": "read",
                "deny": [{"id": "d", "clauses": [{"op": "segment_match", "values": ["nope"]}]}],
            },
            "deny[0].clauses[0].values[0]",
            id="unknown-segment",
        ),
        pytest.param(
            {"key": "t", "risk": "read", "budget": {"calls": 0, "window": 5}},
            "budget.calls",
            id="budget",
        ),
    ],
)
def test_bad_tools_are_refused_naming_the_field(
    client: TestClient, shop: dict[str, Any], body: dict[str, Any], field: str
) -> None:
    r = client.post(TOOLS, json=body)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    fields = [
        p.get("field") or ".".join(str(x) for x in p.get("loc", [])) for p in r.json()["errors"]
    ]
    assert any(f.endswith(field) for f in fields), fields


def test_the_tool_policy_tightens_at_once_and_loosens_through_approval(
    client: TestClient, shop: dict[str, Any]
) -> None:
    current = client.get(f"{P}/tool-policy")
    assert current.json()["overrides"] == {}
    tighter = client.put(
        f"{P}/tool-policy",
        json={"overrides": {"full": {"write": "approval_required"}}, "reason": "careful"},
        headers={"If-Match": current.headers["ETag"]},
    )
    assert tighter.status_code == 200, tighter.text
    assert tighter.json()["effective"]["low"]["full"]["write"] == "approval_required"
    assert _snapshot(client, shop)["tool_policy"] == {"full": {"write": "approval_required"}}
    looser = client.put(
        f"{P}/tool-policy",
        json={"overrides": {"full": {"irreversible": "allow"}}, "reason": "trust"},
        headers={"If-Match": f'"{tighter.json()["version"]}"'},
    )
    assert looser.status_code == 202, looser.text
    bad = client.put(
        f"{P}/tool-policy",
        json={"overrides": {"full": {"write": "maybe"}}},
        headers={"If-Match": f'"{tighter.json()["version"]}"'},
    )
    assert bad.status_code == 422, bad.text
    assert "tool_policy.full.write" in bad.text


def test_a_segment_used_by_a_denial_cannot_be_deleted(
    client: TestClient, shop: dict[str, Any]
) -> None:
    _register(client, shop, "refund", "write")
    audience = {"id": "eu", "clauses": [{"op": "segment_match", "values": ["eu"]}]}
    assert client.post(f"{TOOLS}/refund/deny", json=audience).status_code == 200
    etag = client.get(f"{P}/segments/eu").headers["ETag"]
    r = client.delete(f"{P}/segments/eu", headers={"If-Match": etag})
    assert r.status_code == 422, r.text
    assert "tools.refund.deny" in r.text


def test_removing_a_tool_applies_at_once(client: TestClient, shop: dict[str, Any]) -> None:
    _register(client, shop, "refund", "write")
    etag = client.get(f"{TOOLS}/refund").headers["ETag"]
    r = client.delete(f"{TOOLS}/refund", headers={"X-Lockgate-Reason": "retired", "If-Match": etag})
    assert r.status_code == 204, r.text
    assert "tools" not in _snapshot(client, shop)
    assert client.get(f"{TOOLS}/refund").status_code == 404
