"""Contracts through the real app, on SQLite and PostgreSQL: plan, apply, apply again, and
the contract holding after it is applied."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from lockgate.control.base import Services
from tests.api.helpers import add_principal, bearer

FIXTURES = Path(__file__).parent / "fixtures"
EXECUTABLE = (FIXTURES / "executable.yaml").read_text()
ARTICLE = (FIXTURES / "article.yaml").read_text()
CONTRACTS = "/api/v1/projects/shop/contracts"
FLAG = "/api/v1/projects/shop/flags/renewal-recommendations"


def _setup(client: TestClient) -> None:
    assert client.post("/api/v1/projects", json={"key": "shop", "name": "Shop"}).status_code == 201
    for env in ({"key": "staging"}, {"key": "production", "protected": True}):
        r = client.post("/api/v1/projects/shop/environments", json=env)
        assert r.status_code == 201, r.text
    for segment, members in (("internal-users", ["u-inside"]), ("regions-under-review", [])):
        body = {"key": segment, "included": members}
        r = client.post("/api/v1/projects/shop/segments", json=body)
        assert r.status_code == 201, r.text


def _apply(client: TestClient, source: str = EXECUTABLE, **more: Any) -> Any:
    return client.post(
        f"{CONTRACTS}/apply", json={"source": source, "file": "renewal.yaml", **more}
    )


def _by_target(result: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(s["step"], s.get("environment") or ""): s for s in result["steps"]}


def _config(client: TestClient, env: str) -> dict[str, Any]:
    r = client.get(f"{FLAG}/environments/{env}")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_plan_apply_and_apply_again(client: TestClient) -> None:
    _setup(client)
    r = client.post(f"{CONTRACTS}/plan", json={"source": EXECUTABLE, "file": "renewal.yaml"})
    assert r.status_code == 200, r.text
    plan = _by_target(r.json())
    assert plan["definition", ""]["outcome"] == "apply"
    assert plan["contract", ""]["outcome"] == "apply"
    assert plan["environment", "staging"]["outcome"] == "apply"
    production = plan["environment", "production"]
    assert production["outcome"] == "request_approval"
    assert production["rule"] == "posture.medium.approvals.protected = 1"
    assert production["approvals_required"] == 1

    r = _apply(client)
    assert r.status_code == 202, r.text
    result = r.json()
    steps = _by_target(result)
    assert steps["definition", ""]["outcome"] == "applied"
    assert steps["contract", ""]["outcome"] == "applied"
    assert steps["contract", ""]["version"] == 1
    assert steps["environment", "staging"]["outcome"] == "applied"
    assert steps["environment", "production"]["outcome"] == "change_request"
    # The contract's guardrail and rollout stages are enforced: a guardrail per environment
    # (applied at once) and a staged rollout plan (an expansion: production waits for it).
    assert steps["guardrail", "staging"]["outcome"] == "applied"
    assert steps["guardrail", "production"]["outcome"] == "applied"
    assert steps["rollout_plan", "staging"]["outcome"] == "applied"
    assert steps["rollout_plan", "production"]["outcome"] == "change_request"
    assert result["pending"] == [
        steps["environment", "production"]["change_request"],
        steps["rollout_plan", "production"]["change_request"],
    ]

    flag = client.get(FLAG).json()
    assert flag["kind"] == "mode"
    assert flag["behavior_kind"] == "backend_workflow"
    assert flag["risk_tier"] == "medium"
    assert flag["owner"] == "growth-platform"
    staging = _config(client, "staging")
    assert staging["on"] is True
    assert staging["off_variation"] == "fallback"
    assert staging["default"] == {"variation": "off"}
    assert staging["rules"][0]["id"] == "contract-first-audience"
    assert staging["rules"][0]["clauses"] == [{"op": "segment_match", "values": ["internal-users"]}]
    assert staging["rules"][0]["serve"] == {"variation": "draft_only"}
    production_config = _config(client, "production")
    assert production_config["on"] is False  # waits for its approval

    # A second apply changes nothing and says so (the open request is reported, not doubled).
    r = _apply(client)
    assert r.status_code == 202, r.text
    again = r.json()
    assert again["changed"] is False
    outcomes = {k: s["outcome"] for k, s in _by_target(again).items()}
    assert outcomes == {
        ("contract", ""): "unchanged",
        ("definition", ""): "unchanged",
        ("environment", "staging"): "unchanged",
        ("environment", "production"): "pending",
        ("guardrail", "staging"): "unchanged",
        ("guardrail", "production"): "unchanged",
        ("rollout_plan", "staging"): "unchanged",
        ("rollout_plan", "production"): "pending",
    }
    requests = client.get("/api/v1/projects/shop/change-requests").json()["items"]
    assert len([cr for cr in requests if cr["state"] == "open"]) == 2

    audit = client.get("/api/v1/audit", params={"action": "contract:applied"}).json()["items"]
    assert len(audit) == 1
    assert audit[0]["refs"]["contract_hash"] == result["hash"]
    assert audit[0]["refs"]["tickets"] == ["https://tracker.example.com/REL-42"]
    versions = client.get(f"{FLAG}/contract/versions").json()["items"]
    assert [v["version"] for v in versions] == [1]
    assert versions[0]["source"] == EXECUTABLE
    assert versions[0]["hash"] == result["hash"]


def test_a_later_write_outside_the_allowed_modes_is_refused(client: TestClient) -> None:
    _setup(client)
    narrow = EXECUTABLE.replace("    - full\n", "")
    assert _apply(client, narrow).status_code == 202
    config = _config(client, "staging")
    r = client.patch(
        f"{FLAG}/environments/staging",
        json={"rules": [{**config["rules"][0], "serve": {"variation": "full"}}], "reason": "x"},
        headers={"If-Match": f'"{config["version"]}"'},
    )
    assert r.status_code == 403, r.text
    assert r.headers["content-type"] == "application/problem+json"
    detail = r.json()["detail"]
    assert "'full', outside the allowed modes" in detail
    assert "contract line 11: allowed_modes" in detail
    # Within the allowed modes the same write goes through.
    r = client.patch(
        f"{FLAG}/environments/staging",
        json={"rules": [{**config["rules"][0], "serve": {"variation": "observe"}}], "reason": "x"},
        headers={"If-Match": f'"{config["version"]}"'},
    )
    assert r.status_code == 200, r.text


def test_the_first_expansion_must_go_to_the_first_audience(client: TestClient) -> None:
    _setup(client)
    off_everywhere = EXECUTABLE.replace(
        "    staging: {state: first_audience, mode: draft_only}\n", '    staging: "off"\n'
    ).replace("    production: {state: first_audience, mode: observe}\n", "")
    r = _apply(client, off_everywhere)
    assert r.status_code == 200, r.text
    config = _config(client, "staging")
    assert config["on"] is False
    wider = {"on": True, "default": {"variation": "observe"}, "reason": "everyone at once"}
    r = client.patch(
        f"{FLAG}/environments/staging",
        json=wider,
        headers={"If-Match": f'"{config["version"]}"'},
    )
    assert r.status_code == 403, r.text
    detail = r.json()["detail"]
    assert "must go to its first audience" in detail
    assert "contract line 8: first_audience" in detail
    # The first audience first: accepted.
    first = {
        "on": True,
        "rules": [
            {
                "id": "internal",
                "clauses": [{"op": "segment_match", "values": ["internal-users"]}],
                "serve": {"variation": "observe"},
            }
        ],
        "reason": "internal users first",
    }
    r = client.patch(
        f"{FLAG}/environments/staging",
        json=first,
        headers={"If-Match": f'"{config["version"]}"'},
    )
    assert r.status_code == 200, r.text


def test_the_contract_keeps_its_risk_tier_and_default_state(client: TestClient) -> None:
    _setup(client)
    assert _apply(client).status_code == 202
    flag = client.get(FLAG).json()
    r = client.patch(
        FLAG,
        json={"risk_tier": "low", "reason": "lower"},
        headers={"If-Match": f'"{flag["version"]}"'},
    )
    assert r.status_code == 403, r.text
    assert "contract line 6: risk_level" in r.json()["detail"]
    # A new environment gets the contract's default_state.
    r = client.post("/api/v1/projects/shop/environments", json={"key": "eu"})
    assert r.status_code == 201, r.text
    config = _config(client, "eu")
    assert config["on"] is False
    assert config["off_variation"] == "off"


def test_plan_of_one_environment_and_unknown_references(client: TestClient) -> None:
    _setup(client)
    r = client.post(
        f"{CONTRACTS}/plan",
        json={"source": EXECUTABLE, "file": "renewal.yaml", "environment": "staging"},
    )
    assert r.status_code == 200, r.text
    assert [s.get("environment") for s in r.json()["steps"] if s["step"] == "environment"] == [
        "staging"
    ]
    missing = EXECUTABLE.replace("segment: internal-users", "segment: nobody")
    r = client.post(f"{CONTRACTS}/plan", json={"source": missing})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    [error] = r.json()["errors"]
    assert error["field"] == "ai_generated_software_control.first_audience.segment"
    assert error["line"] == 8
    assert "nobody" in error["message"]
    r = client.post(f"{CONTRACTS}/apply", json={"source": ARTICLE})
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "ai_generated_software_control.key"


def test_validate_explain_schema_and_export(client: TestClient) -> None:
    _setup(client)
    r = client.post("/api/v1/contracts/validate", json={"source": ARTICLE, "file": "a.yaml"})
    assert r.status_code == 200, r.text
    assert r.json()["valid"] is True
    r = client.post("/api/v1/contracts/validate", json={"source": "a: [", "file": "b.yaml"})
    assert r.json()["valid"] is False
    assert r.json()["problems"][0]["line"] == 2 or r.json()["problems"][0]["line"] == 1
    r = client.post("/api/v1/contracts/explain", json={"source": ARTICLE})
    assert r.status_code == 200, r.text
    unenforced = {t["field"] for t in r.json()["unenforced"]}
    assert "first_audience" in unenforced
    assert "guardrails[0]" in unenforced
    schema = client.get("/api/v1/contracts/schema").json()
    assert "ai_generated_software_control" in schema["properties"]
    assert _apply(client).status_code == 202
    exported = client.get(f"{FLAG}/contract").json()
    assert exported["applied"]["version"] == 1
    text = exported["contract"]
    assert 'key: "renewal-recommendations"' in text
    assert 'segment: "internal-users"' in text
    assert 'staging: {state: first_audience, mode: "draft_only"}' in text
    assert 'production: "off"' in text
    r = client.get("/api/v1/projects/shop/flags", params={"behavior_kind": "backend_workflow"})
    assert [f["key"] for f in r.json()["items"]] == ["renewal-recommendations"]
    r = client.get("/api/v1/projects/shop/flags", params={"behavior_kind": "prompt"})
    assert r.json()["items"] == []


def test_a_contract_that_allows_more_needs_the_approvals_of_its_tier(
    client: TestClient, services: Services
) -> None:
    _setup(client)
    narrow = EXECUTABLE.replace("    - full\n", "")
    assert _apply(client, narrow).status_code == 202
    # Allowing `full` again loosens the contract: an expansion of authority, which a
    # medium-risk behavior with a protected environment needs one approval for.
    r = client.post(f"{CONTRACTS}/plan", json={"source": EXECUTABLE})
    step = _by_target(r.json())["contract", ""]
    assert step["outcome"] == "request_approval"
    assert step["reasons"] == ["allowed_modes adds full"]
    r = _apply(client)
    assert r.status_code == 202, r.text
    step = _by_target(r.json())["contract", ""]
    assert step["outcome"] == "change_request"
    assert client.get(f"{FLAG}/contract").json()["applied"]["version"] == 1
    # Applying again does not propose it twice.
    assert _by_target(_apply(client).json())["contract", ""]["outcome"] == "pending"
    approver = add_principal(services, "ava", [("shop", "approver")])
    request_id = step["change_request"]
    r = client.post(
        f"/api/v1/change-requests/{request_id}/approve", json={}, headers=bearer(approver)
    )
    assert r.json()["state"] == "approved", r.text
    r = client.post(f"/api/v1/change-requests/{request_id}/apply", json={})
    assert r.status_code == 200, r.text
    applied = client.get(f"{FLAG}/contract").json()["applied"]
    assert applied["version"] == 2
    assert (
        "full"
        in client.get(f"{FLAG}/contract/versions").json()["items"][0]["rules"]["allowed_modes"]
    )
    # Narrowing it again applies at once (a reduction).
    r = _apply(client, narrow)
    assert _by_target(r.json())["contract", ""]["outcome"] == "applied"


def _serves(client: TestClient, env: str, key: str) -> Any:
    r = client.post(
        f"/api/v1/projects/shop/environments/{env}/evaluate",
        json={"flag": "renewal-recommendations", "context": {"key": key}},
    )
    assert r.status_code == 200, r.text
    return r.json()["value"]


def test_done_means_first_audience_in_production_after_approval_all_audited(
    client: TestClient, services: Services
) -> None:
    _setup(client)
    result = _apply(client).json()
    request_id = result["pending"][0]
    assert _serves(client, "production", "u-inside") == "off"  # waits for its approval
    assert _serves(client, "staging", "u-inside") == "draft_only"
    assert _serves(client, "staging", "u-outside") == "off"
    approver = add_principal(services, "ava", [("shop", "approver")])
    r = client.post(
        f"/api/v1/change-requests/{request_id}/approve", json={}, headers=bearer(approver)
    )
    assert r.json()["state"] == "approved", r.text
    assert client.post(f"/api/v1/change-requests/{request_id}/apply", json={}).status_code == 200
    assert _serves(client, "production", "u-inside") == "observe"
    assert _serves(client, "production", "u-outside") == "off"
    plan_request = result["pending"][1]  # the contract's rollout stages, as a plan
    r = client.post(
        f"/api/v1/change-requests/{plan_request}/approve", json={}, headers=bearer(approver)
    )
    assert r.json()["state"] == "approved", r.text
    assert client.post(f"/api/v1/change-requests/{plan_request}/apply", json={}).status_code == 200
    plan = client.get(f"{FLAG}/environments/production/rollout").json()
    assert [s["variation"] for s in plan["stages"]] == [
        "observe",
        "draft_only",
        "approval_required",
    ]
    again = _apply(client)
    assert again.status_code == 200, again.text
    assert again.json()["changed"] is False
    actions = [
        e["action"]
        for e in client.get("/api/v1/audit", params={"project": "shop", "limit": 100}).json()[
            "items"
        ]
        if e.get("object_key") in ("renewal-recommendations", None)
        or e["action"].startswith("change_request")
    ]
    for expected in (
        "flag:created",
        "contract:applied",
        "flag:configured",
        "change_request:created",
        "change_request:approved",
        "change_request:applied",
    ):
        assert expected in actions, actions


def test_an_incident_freezes_what_a_contract_apply_would_expand(client: TestClient) -> None:
    _setup(client)
    # The behavior exists (off everywhere) before the incident; applying its contract then
    # would turn it on in staging: an expansion, frozen while the incident covers it.
    body = {"key": "renewal-recommendations", "kind": "mode", "risk_tier": "medium"}
    assert client.post("/api/v1/projects/shop/flags", json=body).status_code == 201
    start = {"environment": "staging", "reason": "model provider degraded"}
    incident = client.post("/api/v1/projects/shop/incidents", json=start)
    assert incident.status_code == 201, incident.text
    r = _apply(client)
    steps = _by_target(r.json())
    staging = steps["environment", "staging"]
    assert staging["outcome"] == "refused", staging
    assert f"incident #{incident.json()['id']}: expansions are frozen" in staging["rule"]
    assert _config(client, "staging")["on"] is False


def test_a_behavior_under_a_contract_can_always_be_killed_and_rolled_back(
    client: TestClient,
) -> None:
    _setup(client)
    assert _apply(client).status_code == 202
    body = {"environments": ["staging", "production"], "reason": "stop it"}
    killed = client.post(f"{FLAG}/kill", json=body)
    assert killed.status_code == 200, killed.text
    assert [e["changed"] for e in killed.json()["environments"]] == [True, True]
    rollback = {"audience": "region:eu", "reason": "EU errors"}
    excluded = client.post(f"{FLAG}/environments/staging/exclusions", json=rollback)
    assert excluded.status_code == 201, excluded.text


def test_the_behavior_kind_filters_audit_entries_and_change_requests(client: TestClient) -> None:
    _setup(client)
    assert _apply(client).status_code == 202
    # Another behavior, of another kind, with its own audit entries and change request.
    other = {
        "key": "summary-prompt",
        "kind": "boolean",
        "behavior_kind": "prompt",
        "risk_tier": "high",
        "reason": "summaries from the new prompt",
    }
    r = client.post("/api/v1/projects/shop/flags", json=other)
    assert r.status_code == 201, r.text
    r = client.patch(
        "/api/v1/projects/shop/flags/summary-prompt/environments/production",
        json={"on": True, "default": {"variation": "on"}, "reason": "first exposure"},
        headers={"If-Match": '"1"'},
    )
    assert r.status_code == 202, r.text

    def audit_keys(kind: str) -> set[str]:
        r = client.get("/api/v1/audit", params={"behavior_kind": kind, "limit": 500})
        assert r.status_code == 200, r.text
        items = r.json()["items"]
        assert all(e["object_type"] == "flag" for e in items)
        return {e["object_key"] for e in items}

    assert audit_keys("backend_workflow") == {"renewal-recommendations"}
    assert audit_keys("prompt") == {"summary-prompt"}
    assert audit_keys("data_movement") == set()

    def request_keys(kind: str) -> list[str]:
        r = client.get("/api/v1/projects/shop/change-requests", params={"behavior_kind": kind})
        assert r.status_code == 200, r.text
        return [item["object_key"] for item in r.json()["items"]]

    assert request_keys("backend_workflow") == ["renewal-recommendations"]
    assert request_keys("prompt") == ["summary-prompt"]
    assert request_keys("integration") == []

    for path in ("/api/v1/audit", "/api/v1/projects/shop/change-requests"):
        r = client.get(path, params={"behavior_kind": "spaceship"})
        assert r.status_code == 422
        assert r.headers["content-type"].startswith("application/problem+json")
        assert "behavior_kind" in r.text
