"""The governed change path over HTTP, on SQLite and PostgreSQL: each rule, named."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lockgate.control.base import Services
from lockgate.control.jobs import BackgroundJobs, standard_jobs
from lockgate.store.verify import verify_database
from tests.api.helpers import add_principal, add_token, bearer

SPLIT_5 = {"split": [{"variation": "full", "weight": 5000}, {"variation": "off", "weight": 95000}]}
OBSERVE = {"variation": "observe"}
SPLIT_50 = {
    "split": [{"variation": "full", "weight": 50000}, {"variation": "off", "weight": 50000}]
}


def _project(client: TestClient) -> None:
    assert client.post("/api/v1/projects", json={"key": "shop", "name": "Shop"}).status_code == 201
    for key, protected in (("development", False), ("production", True)):
        body = {"key": key, "protected": protected, "development": key == "development"}
        assert client.post("/api/v1/projects/shop/environments", json=body).status_code == 201


def _flag(client: TestClient, key: str = "agent", tier: str = "high") -> None:
    body = {"key": key, "kind": "mode", "risk_tier": tier, "reason": "new generated path"}
    assert client.post("/api/v1/projects/shop/flags", json=body).status_code == 201


def _config_path(key: str = "agent", env: str = "production") -> str:
    return f"/api/v1/projects/shop/flags/{key}/environments/{env}"


def _patch(
    http: TestClient, body: dict[str, Any], *, token: str | None = None, key: str = "agent",
    env: str = "production", plan: bool = False,
) -> Any:  # fmt: skip
    path = _config_path(key, env)
    headers = {} if token is None else bearer(token)
    current = http.get(path, headers=headers)
    assert current.status_code == 200, current.text
    headers["If-Match"] = current.headers["ETag"]
    query = "?plan=true" if plan else ""
    return http.patch(path + query, json=body, headers=headers)


@pytest.fixture
def team(client: TestClient, services: Services) -> dict[str, str]:
    """A project with an editor (who proposes), two approvers and a viewer."""
    _project(client)
    _flag(client)
    return {
        "editor": add_principal(services, "erin", [("shop", "editor")]),
        "approver": add_principal(services, "ava", [("shop", "approver")]),
        "approver2": add_principal(services, "abe", [("shop", "approver")]),
        "viewer": add_principal(services, "vic", [("shop", "viewer")]),
    }


def _propose(
    client: TestClient, team: dict[str, str], body: dict[str, Any] | None = None
) -> dict[str, Any]:
    answer = _patch(
        client, {"on": True, "default": SPLIT_5, "reason": "5 % of traffic"} | (body or {}),
        token=team["editor"],
    )  # fmt: skip
    assert answer.status_code == 202, answer.text
    return dict(answer.json())


def _approve(client: TestClient, request_id: int, token: str, **body: Any) -> Any:
    return client.post(
        f"/api/v1/change-requests/{request_id}/approve", json=body, headers=bearer(token)
    )


def test_high_risk_expansion_in_production_becomes_a_change_request(
    client: TestClient, team: dict[str, str]
) -> None:
    request = _propose(client, team)
    assert request["state"] == "open"
    assert request["approvals_required"] == 1
    assert request["policy"]["direction"] == "expansion"
    assert request["policy"]["rule"] == "posture.high.approvals.protected = 1"
    # Nothing applied: the configuration is still off at version 1.
    config = client.get(_config_path()).json()
    assert config["on"] is False
    assert config["version"] == 1


def test_self_approval_is_refused(
    client: TestClient, team: dict[str, str], services: Services
) -> None:
    request = _propose(client, team)
    editor_as_approver = add_principal(services, "eve", [("shop", "approver")])
    mine = _patch(
        client, {"on": True, "default": OBSERVE, "reason": "mine"}, token=editor_as_approver
    )
    assert mine.status_code == 202
    answer = _approve(client, mine.json()["id"], editor_as_approver)
    assert answer.status_code == 403
    assert "author" in answer.json()["detail"]
    assert _approve(client, request["id"], editor_as_approver).status_code == 200


def test_self_approval_through_another_token_is_refused(
    client: TestClient, services: Services
) -> None:
    _project(client)
    _flag(client)
    first = add_principal(services, "pat", [("shop", "approver")])
    second = add_token(services, "pat")
    request = _patch(client, {"on": True, "default": OBSERVE, "reason": "go"}, token=first)
    assert request.status_code == 202
    answer = _approve(client, request.json()["id"], second)
    assert answer.status_code == 403
    assert "author" in answer.json()["detail"]


def test_automation_token_cannot_approve(
    client: TestClient, team: dict[str, str], services: Services
) -> None:
    request = _propose(client, team)
    bot = add_token(services, "ava", kind="automation")
    answer = _approve(client, request["id"], bot)
    assert answer.status_code == 403
    assert "automation" in answer.json()["detail"]


def test_automation_token_proposes_and_applies_only_what_the_posture_allows_directly(
    client: TestClient, team: dict[str, str], services: Services
) -> None:
    bot = add_principal(services, "ci", [("shop", "editor")], token_kind="automation")
    _flag(client, "label", tier="low")
    direct = _patch(
        client, {"on": True, "default": OBSERVE, "reason": "copy change"}, token=bot, key="label"
    )
    assert direct.status_code == 200
    assert direct.json()["on"] is True
    proposed = _patch(client, {"on": True, "default": OBSERVE, "reason": "agent"}, token=bot)
    assert proposed.status_code == 202


def test_edit_voids_approvals(client: TestClient, team: dict[str, str], services: Services) -> None:
    _flag(client, "payout", tier="restricted")
    answer = _patch(
        client,
        {"on": True, "default": OBSERVE, "reason": "pilot"},
        token=team["editor"],
        key="payout",
    )
    assert answer.status_code == 202
    request = answer.json()
    assert request["approvals_required"] == 2
    assert _approve(client, request["id"], team["approver"]).json()["state"] == "open"
    revised = client.patch(
        f"/api/v1/change-requests/{request['id']}",
        json={"default": {"variation": "observe"}, "reason": "observe only"},
        headers=bearer(team["editor"]),
    )
    assert revised.status_code == 200, revised.text
    body = revised.json()
    assert body["revision"] == 2
    assert body["approvals"] == []
    assert [a["by"] for a in body["voided_approvals"]] == ["ava"]
    # A decision on the old hash is refused; the same approver may approve the new one.
    stale = _approve(client, request["id"], team["approver2"], change_hash=request["change_hash"])
    assert stale.status_code == 409
    assert _approve(client, request["id"], team["approver"]).json()["state"] == "open"
    assert _approve(client, request["id"], team["approver2"]).json()["state"] == "approved"


def test_two_approvals_come_from_distinct_people(client: TestClient, team: dict[str, str]) -> None:
    _flag(client, "payout", tier="restricted")
    request = _patch(
        client,
        {"on": True, "default": OBSERVE, "reason": "pilot"},
        token=team["editor"],
        key="payout",
    ).json()
    assert _approve(client, request["id"], team["approver"]).status_code == 200
    again = _approve(client, request["id"], team["approver"])
    assert again.status_code == 409
    assert client.get(f"/api/v1/change-requests/{request['id']}").json()["state"] == "open"


def test_stale_apply_conflicts_and_applies_nothing(
    client: TestClient, team: dict[str, str]
) -> None:
    _patch(client, {"on": True, "default": {"variation": "observe"}, "reason": "baseline"})
    request = _propose(client, team, {"default": SPLIT_50})
    assert _approve(client, request["id"], team["approver"]).json()["state"] == "approved"
    # Meanwhile someone reduces it (immediate), so the target moved.
    moved = _patch(
        client, {"default": {"variation": "fallback"}, "reason": "calm down"}, token=team["editor"]
    )
    assert moved.status_code == 200
    answer = client.post(
        f"/api/v1/change-requests/{request['id']}/apply", json={}, headers=bearer(team["editor"])
    )
    assert answer.status_code == 409
    problem = answer.json()
    assert "default" in problem["changed_fields"]
    assert "changed since the change was proposed" in problem["detail"]
    assert client.get(_config_path()).json()["default"] == {"variation": "fallback"}
    assert client.get(f"/api/v1/change-requests/{request['id']}").json()["state"] == "conflicted"


def test_requests_expire(client: TestClient, team: dict[str, str], services: Services) -> None:
    request = _propose(client, team)
    later = services.clock() + timedelta(days=8)
    services.clock = lambda: later
    jobs = BackgroundJobs(
        services, standard_jobs(services, checkpoint_every=10, checkpoint_minutes=0)
    )
    assert jobs.run_once() == {
        "change-request-expiry": 1,
        "change-request-schedule": 0,
        "runtime-approval-timeout": 0,
        "decision-retention": 0,
        "metric-summary-rollup": 0,
        "cleanup-rules": 0,
    }
    assert client.get(f"/api/v1/change-requests/{request['id']}").json()["state"] == "expired"
    assert _approve(client, request["id"], team["approver"]).status_code == 409


def test_rejection_blocks(client: TestClient, team: dict[str, str]) -> None:
    request = _propose(client, team)
    rejected = client.post(
        f"/api/v1/change-requests/{request['id']}/reject",
        json={"comment": "not before the guardrails are in"},
        headers=bearer(team["approver"]),
    )
    assert rejected.json()["state"] == "rejected"
    assert _approve(client, request["id"], team["approver2"]).status_code == 409
    apply = client.post(
        f"/api/v1/change-requests/{request['id']}/apply", json={}, headers=bearer(team["editor"])
    )
    assert apply.status_code == 409


def test_reduction_is_immediate_for_an_editor(client: TestClient, team: dict[str, str]) -> None:
    request = _propose(client, team)
    _approve(client, request["id"], team["approver"])
    applied = client.post(
        f"/api/v1/change-requests/{request['id']}/apply", json={}, headers=bearer(team["editor"])
    )
    assert applied.status_code == 200, applied.text
    off = _patch(client, {"on": False, "reason": "errors up"}, token=team["editor"])
    assert off.status_code == 200
    assert off.json()["on"] is False
    lower = _patch(
        client, {"on": True, "default": {"variation": "off"}, "reason": "x"}, token=team["editor"]
    )
    assert lower.status_code == 200  # on, but serving "off" to everyone: no one gets more


def test_segment_widening_follows_the_strictest_posture(
    client: TestClient, team: dict[str, str]
) -> None:
    _flag(client, "banner", tier="low")
    segment = {"key": "beta", "included": ["u1"], "reason": "beta testers"}
    assert client.post("/api/v1/projects/shop/segments", json=segment).status_code == 201
    rule = [
        {
            "id": "beta",
            "clauses": [{"op": "segment_match", "values": ["beta"]}],
            "serve": {"variation": "full"},
        }
    ]
    assert (
        _patch(client, {"on": True, "rules": rule, "reason": "low"}, key="banner").status_code
        == 200
    )
    # The high-risk flag is admitted to the segment through a change request.
    request = _patch(
        client, {"on": True, "rules": rule, "reason": "beta"}, token=team["editor"]
    ).json()
    _approve(client, request["id"], team["approver"])
    client.post(
        f"/api/v1/change-requests/{request['id']}/apply", json={}, headers=bearer(team["editor"])
    )
    path = "/api/v1/projects/shop/segments/beta"
    current = client.get(path)
    widen = client.patch(
        path,
        json={"included": ["u1", "u2"], "reason": "more testers"},
        headers={**bearer(team["editor"]), "If-Match": current.headers["ETag"]},
    )
    assert widen.status_code == 202, widen.text
    assert widen.json()["policy"]["rule"] == "posture.high.approvals.protected = 1"
    narrow = client.patch(
        path,
        json={"included": [], "reason": "fewer"},
        headers={**bearer(team["editor"]), "If-Match": current.headers["ETag"]},
    )
    assert narrow.status_code == 200


def test_expanding_revert_needs_approval(client: TestClient, team: dict[str, str]) -> None:
    request = _propose(client, team)
    _approve(client, request["id"], team["approver"])
    client.post(
        f"/api/v1/change-requests/{request['id']}/apply", json={}, headers=bearer(team["editor"])
    )
    assert _patch(client, {"on": False, "reason": "stop"}, token=team["editor"]).status_code == 200
    path = _config_path() + "/revert"
    current = client.get(_config_path())
    back = client.post(
        path,
        json={"to_version": 2, "reason": "resume"},
        headers={**bearer(team["editor"]), "If-Match": current.headers["ETag"]},
    )
    assert back.status_code == 202
    assert back.json()["action"] == "flag:reverted"
    to_off = client.post(
        path,
        json={"to_version": 1, "reason": "back to the start"},
        headers={**bearer(team["editor"]), "If-Match": current.headers["ETag"]},
    )
    assert to_off.status_code == 200


def test_change_requests_of_a_project_you_cannot_see_answer_404(
    client: TestClient, team: dict[str, str], services: Services
) -> None:
    request = _propose(client, team)
    client.post("/api/v1/projects", json={"key": "other", "name": "Other"})
    outsider = add_principal(services, "olga", [("other", "admin")])
    for method, path in (
        ("get", f"/api/v1/change-requests/{request['id']}"),
        ("get", f"/api/v1/change-requests/{request['id']}/diff"),
        ("post", f"/api/v1/change-requests/{request['id']}/approve"),
        ("get", "/api/v1/projects/shop/change-requests"),
    ):
        kwargs: dict[str, Any] = {"json": {}} if method == "post" else {}
        answer = getattr(client, method)(path, headers=bearer(outsider), **kwargs)
        assert answer.status_code == 404, (path, answer.text)
    assert client.get("/api/v1/change-requests/999999").status_code == 404


def test_a_viewer_can_read_but_not_approve(client: TestClient, team: dict[str, str]) -> None:
    request = _propose(client, team)
    assert (
        client.get(
            f"/api/v1/change-requests/{request['id']}", headers=bearer(team["viewer"])
        ).status_code
        == 200
    )
    assert _approve(client, request["id"], team["viewer"]).status_code == 403


def test_plan_answers_what_would_happen_and_writes_nothing(
    client: TestClient, team: dict[str, str]
) -> None:
    before = client.get("/api/v1/audit?limit=1").json()["items"][0]["seq"]
    planned = _patch(
        client,
        {"on": True, "default": OBSERVE, "reason": "what if"},
        token=team["editor"],
        plan=True,
    )
    assert planned.status_code == 200
    plan = planned.json()["plan"]
    assert plan["decision"]["outcome"] == "request_approval"
    assert len(plan["change_hash"]) == 64
    reduce = _patch(
        client,
        {"default": {"variation": "fallback"}, "reason": "what if"},
        token=team["editor"],
        plan=True,
    )
    assert reduce.json()["plan"]["decision"]["outcome"] == "apply"
    assert client.get("/api/v1/audit?limit=1").json()["items"][0]["seq"] == before
    assert client.get("/api/v1/projects/shop/change-requests").json()["total"] == 0


def test_posture_change_needs_an_approval_and_deny_refuses(
    client: TestClient, team: dict[str, str]
) -> None:
    current = client.get("/api/v1/projects/shop/posture")
    assert current.json()["posture"]["medium"]["approvals"]["protected"] == 1
    body = {"posture": {"high": {"approvals": {"protected": "deny"}}}, "reason": "freeze"}
    proposed = client.put(
        "/api/v1/projects/shop/posture", json=body, headers={"If-Match": current.headers["ETag"]}
    )
    assert proposed.status_code == 202
    request = proposed.json()
    assert _approve(client, request["id"], team["approver"]).json()["state"] == "approved"
    applied = client.post(f"/api/v1/change-requests/{request['id']}/apply", json={})
    assert applied.status_code == 200, applied.text
    refused = _patch(client, {"on": True, "default": OBSERVE, "reason": "go"}, token=team["editor"])
    assert refused.status_code == 403
    assert refused.json()["code"] == "policy_refused"
    assert refused.json()["rule"] == "posture.high.approvals.protected = deny"
    assert (
        _patch(client, {"on": False, "reason": "still fine"}, token=team["editor"]).status_code
        == 200
    )
    bad = client.put(
        "/api/v1/projects/shop/posture",
        json={"posture": {"high": {"approvals": {"protected": 9}}}, "reason": "x"},
        headers={"If-Match": client.get("/api/v1/projects/shop/posture").headers["ETag"]},
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "posture.high.approvals.protected"


def test_unprotecting_an_environment_needs_an_approval(
    client: TestClient, team: dict[str, str]
) -> None:
    path = "/api/v1/projects/shop/environments/production"
    current = client.get(path)
    answer = client.patch(
        path,
        json={"protected": False, "reason": "x"},
        headers={"If-Match": current.headers["ETag"]},
    )
    assert answer.status_code == 202
    assert client.get(path).json()["protected"] is True
    rename = client.patch(
        path, json={"name": "Prod"}, headers={"If-Match": current.headers["ETag"]}
    )
    assert rename.status_code == 200


def test_lowering_a_risk_tier_needs_an_approval(client: TestClient, team: dict[str, str]) -> None:
    path = "/api/v1/projects/shop/flags/agent"
    current = client.get(path)
    answer = client.patch(
        path, json={"risk_tier": "low", "reason": "not that risky"},
        headers={**bearer(team["editor"]), "If-Match": current.headers["ETag"]},
    )  # fmt: skip
    assert answer.status_code == 202
    assert client.get(path).json()["risk_tier"] == "high"


def test_scheduled_apply_runs_in_the_background_job(
    client: TestClient, team: dict[str, str], services: Services
) -> None:
    request = _propose(client, team)
    _approve(client, request["id"], team["approver"])
    when = (services.clock() + timedelta(hours=1)).isoformat()
    scheduled = client.put(
        f"/api/v1/change-requests/{request['id']}/schedule",
        json={"apply_at": when},
        headers=bearer(team["editor"]),
    )
    assert scheduled.status_code == 200, scheduled.text
    jobs = BackgroundJobs(
        services, standard_jobs(services, checkpoint_every=10, checkpoint_minutes=0)
    )
    assert jobs.run_once() == {
        "change-request-expiry": 0,
        "change-request-schedule": 0,
        "runtime-approval-timeout": 0,
        "decision-retention": 0,
        "metric-summary-rollup": 0,
        "cleanup-rules": 0,
    }
    later = services.clock() + timedelta(hours=2)
    services.clock = lambda: later
    assert jobs.run_once() == {
        "change-request-expiry": 0,
        "change-request-schedule": 1,
        "runtime-approval-timeout": 0,
        "decision-retention": 0,
        "metric-summary-rollup": 0,
        "cleanup-rules": 0,
    }
    assert client.get(f"/api/v1/change-requests/{request['id']}").json()["state"] == "applied"
    assert client.get(_config_path()).json()["on"] is True


def test_the_whole_path_is_audited_with_the_request_id_and_the_chain_verifies(
    client: TestClient, team: dict[str, str], services: Services
) -> None:
    request = _propose(client, team)
    _approve(client, request["id"], team["approver"], comment="guardrails look fine")
    client.post(
        f"/api/v1/change-requests/{request['id']}/apply", json={}, headers=bearer(team["editor"])
    )
    entries = client.get("/api/v1/audit?project=shop&order=asc&limit=200").json()["items"]
    tagged = [e for e in entries if e["refs"].get("change_request") == request["id"]]
    assert [e["action"] for e in tagged] == [
        "change_request:created",
        "change_request:approved",
        "flag:configured",
        "change_request:applied",
    ]
    configured = tagged[2]
    assert configured["reason"] == "5 % of traffic"
    assert configured["actor_name"] == "erin"
    assert configured["evidence"]["change_request"]["approved_by"] == ["ava"]
    report = verify_database(services.database, public_key=services.signer.public_key)
    assert report.problems == [], report.problems


def _race(client: TestClient, team: dict[str, str], rid: int) -> dict[str, int]:
    """Two approvals, an apply and an edit of request ``rid``, all at once."""
    editor = bearer(team["editor"])
    calls: dict[str, Callable[[], Any]] = {
        "approve": lambda: _approve(client, rid, team["approver"]),
        "approve2": lambda: _approve(client, rid, team["approver2"]),
        "apply": lambda: client.post(
            f"/api/v1/change-requests/{rid}/apply", json={}, headers=editor
        ),
        "edit": lambda: client.patch(
            f"/api/v1/change-requests/{rid}",
            json={"default": SPLIT_50, "reason": "more"},
            headers=editor,
        ),
    }
    barrier = threading.Barrier(len(calls))
    results: dict[str, int] = {}

    def act(name: str) -> None:
        barrier.wait()
        results[name] = calls[name]().status_code

    threads = [threading.Thread(target=act, args=(name,)) for name in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_two_approvers_and_an_apply_race_an_edit(client: TestClient, team: dict[str, str]) -> None:
    """Whatever the interleaving, what is applied is exactly a revision that was approved."""
    for _ in range(4):
        request = _propose(client, team)
        before = client.get(_config_path()).json()
        results = _race(client, team, request["id"])
        final = client.get(f"/api/v1/change-requests/{request['id']}").json()
        assert set(results.values()) <= {200, 409}, results
        assert all(a["revision"] == final["revision"] for a in final["approvals"])
        config = client.get(_config_path()).json()
        if final["state"] == "applied":
            assert results["apply"] == 200
            assert final["approvals"], "applied without an approval of its revision"
            assert config["default"] == final["change"]["after"]["default"]
            assert config["version"] == before["version"] + 1
            reset = _patch(client, {"on": False, "reason": "reset"}, token=team["editor"])
            assert reset.status_code == 200
        else:
            assert results["apply"] == 409
            assert config == before  # nothing applied
            cancel = client.post(
                f"/api/v1/change-requests/{request['id']}/cancel",
                json={},
                headers=bearer(team["editor"]),
            )
            assert cancel.status_code == 200
