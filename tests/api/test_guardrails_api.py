"""Guardrails and staged rollouts over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from lockgate.control.base import Services
from lockgate.control.guardrails import cycle
from tests.api.helpers import add_principal, bearer

P = "/api/v1/projects/shop"
CONFIG = f"{P}/flags/assistant/environments/production"
PLAN = {
    "variation": "full",
    "stages": [
        {"name": "internal", "percent": 100,
         "clauses": [{"attribute": "internal", "op": "in", "values": [True]}]},
        {"percent": 5, "min_hold": "1h"},
        {"percent": 100, "approval": True},
    ],
}  # fmt: skip
ERRORS = {"metric": "error", "min_sample": 500, "window": "30m", "action": "fallback"}


@pytest.fixture
def shop(client: TestClient, services: Services) -> dict[str, str]:
    assert client.post("/api/v1/projects", json={"key": "shop"}).status_code == 201
    assert client.post(f"{P}/environments", json={"key": "production"}).status_code == 201
    for key, tier in (("assistant", "low"), ("agent", "high")):
        body = {"key": key, "kind": "mode", "risk_tier": tier, "reason": "generated"}
        assert client.post(f"{P}/flags", json=body).status_code == 201
    return {
        "viewer": add_principal(services, "vic", [("shop", "viewer")]),
        "approver": add_principal(services, "ava", [("shop", "approver")]),
    }


def test_a_guardrail_is_created_listed_with_its_state_and_deleted(
    client: TestClient, shop: dict[str, str]
) -> None:
    created = client.put(f"{CONFIG}/guardrails/errors", json=ERRORS)
    assert created.status_code == 200, created.text
    assert created.json()["state"] == "no_data"
    assert created.json()["window"] == 1800
    listed = client.get(f"{CONFIG}/guardrails", headers=bearer(shop["viewer"]))
    assert listed.status_code == 200
    assert [g["key"] for g in listed.json()["items"]] == ["errors"]
    again = client.put(f"{CONFIG}/guardrails/errors", json=ERRORS)  # the same: no new version
    assert again.json()["version"] == 1
    deleted = client.delete(f"{CONFIG}/guardrails/errors", headers={"X-Lockgate-Reason": "done"})
    assert deleted.status_code == 200, deleted.text
    assert client.get(f"{CONFIG}/guardrails/errors").status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"metric": "error", "aggregation": "p99"}, "aggregation"),
        ({"metric": "error", "window": "soon"}, "window"),
        ({"metric": "error", "action": "explode"}, "action"),
        ({"metric": "error", "min_sample": 5}, "min_sample"),
        ({"metric": "cost", "comparison": "regression", "per": "account"}, "per"),
        ({"metric": "$exposure"}, "metric"),
        ({"metric": "error", "nope": 1}, "nope"),
        ({"metric": "error", "threshold": "high"}, "threshold"),
    ],
)
def test_bad_guardrails_are_refused_naming_the_field(
    client: TestClient, shop: dict[str, str], body: dict[str, Any], field: str
) -> None:
    answer = client.put(f"{CONFIG}/guardrails/bad", json=body)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert field in answer.text
    assert client.get(f"{CONFIG}/guardrails").json()["items"] == []


@pytest.mark.parametrize(
    "privacy",
    [
        pytest.param({"private_attributes": ["account"]}, id="private"),
        pytest.param({"rules": {"account": "hash"}}, id="hashed"),
    ],
)
def test_a_private_attribute_cannot_scope_a_guardrail(
    client: TestClient, shop: dict[str, str], privacy: dict[str, Any]
) -> None:
    env = f"{P}/environments/production"
    etag = client.get(env).headers["etag"]
    changed = client.patch(env, json={"privacy": privacy}, headers={"If-Match": etag})
    assert changed.status_code == 200, changed.text
    cost = {"metric": "llm_cost", "aggregation": "sum", "comparison": "absolute",
            "threshold": 50, "per": "account", "window": "1d", "action": "fallback"}  # fmt: skip
    answer = client.put(f"{CONFIG}/guardrails/cost", json=cost)
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert [e["field"] for e in problem["errors"]] == ["per"]
    assert "'account' is private" in problem["errors"][0]["message"]
    assert client.get(f"{CONFIG}/guardrails").json()["items"] == []
    # another attribute still may
    assert client.put(f"{CONFIG}/guardrails/cost", json=cost | {"per": "team"}).status_code == 200


def test_a_plan_is_approved_advanced_paused_and_resumed(
    client: TestClient, services: Services, shop: dict[str, str]
) -> None:
    assert client.put(f"{CONFIG}/guardrails/errors", json=ERRORS).status_code == 200
    created = client.put(f"{CONFIG}/rollout", json=PLAN)
    assert created.status_code == 200, created.text
    assert created.json()["stage"] == -1
    cycle.run_cycle(services)
    plan = client.get(f"{CONFIG}/rollout").json()
    assert (plan["stage"], plan["stage_name"]) == (0, "internal")
    config = client.get(CONFIG).json()
    assert config["rules"][-1]["id"] == "rollout-stage"
    paused = client.post(f"{CONFIG}/rollout/pause", json={"reason": "look first"})
    assert paused.json()["status"] == "paused"
    resumed = client.post(f"{CONFIG}/rollout/resume", json={"reason": "looked"})
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["status"] == "active"
    advanced = client.post(f"{CONFIG}/rollout/advance", json={"reason": "by hand"})
    assert advanced.status_code == 200, advanced.text
    assert advanced.json()["plan"]["stage"] == 1
    assert advanced.json()["plan"]["status"] == "awaiting_approval"
    actions = [
        e["action"] for e in client.get("/api/v1/audit", params={"limit": 50}).json()["items"]
    ]
    for action in ("rollout_plan:created", "rollout_plan:advanced", "rollout_plan:paused",
                   "rollout_plan:resumed", "guardrail:created"):  # fmt: skip
        assert action in actions


def test_a_plan_for_a_high_risk_behavior_is_a_change_request_until_approved(
    client: TestClient, services: Services, shop: dict[str, str]
) -> None:
    path = f"{P}/flags/agent/environments/production/rollout"
    proposed = client.put(path, json=PLAN | {"reason": "roll out"})
    assert proposed.status_code == 202, proposed.text
    assert client.get(path).status_code == 404
    request_id = proposed.json()["id"]
    for verb in ("approve", "apply"):
        done = client.post(
            f"/api/v1/change-requests/{request_id}/{verb}", json={},
            headers=bearer(shop["approver"]),
        )  # fmt: skip
        assert done.status_code == 200, done.text
    plan = client.get(path).json()
    assert plan["approval"]["by"] == ["ava"]
    assert plan["approval"]["change_request"] == request_id


def test_plans_name_bad_fields_and_unknown_variations(
    client: TestClient, shop: dict[str, str]
) -> None:
    answer = client.put(f"{CONFIG}/rollout", json={"variation": "nope", "stages": [{"percent": 5}]})
    assert answer.status_code == 422
    assert "variation" in answer.text
    narrowing = {"variation": "full", "stages": [{"percent": 50}, {"percent": 5}]}
    answer = client.put(f"{CONFIG}/rollout", json=narrowing)
    assert answer.status_code == 422
    assert "stages[1].percent" in answer.text
    assert client.get(f"{CONFIG}/rollout").status_code == 404


def test_a_viewer_reads_but_does_not_write(client: TestClient, shop: dict[str, str]) -> None:
    viewer = bearer(shop["viewer"])
    assert client.put(f"{CONFIG}/guardrails/e", json=ERRORS, headers=viewer).status_code == 403
    assert client.get(f"{CONFIG}/guardrails", headers=viewer).status_code == 200
