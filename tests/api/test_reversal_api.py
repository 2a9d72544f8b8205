"""Reversal over HTTP on SQLite and PostgreSQL: kill and restore, targeted rollback,
incident mode and its freeze on every write path."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lockgate.control.base import Services
from lockgate.control.jobs import BackgroundJobs, standard_jobs
from lockgate.store.verify import verify_database
from tests.api.helpers import add_principal, bearer

P = "/api/v1/projects/shop"
FULL = {"variation": "full"}
CORP = {"attribute": "email", "op": "ends_with", "values": ["@corp.example"]}


def _config(key: str = "agent", env: str = "production") -> str:
    return f"{P}/flags/{key}/environments/{env}"


@pytest.fixture
def team(client: TestClient, services: Services) -> dict[str, str]:
    """Project shop (development, production protected), behaviors, and its people."""
    assert client.post("/api/v1/projects", json={"key": "shop"}).status_code == 201
    for key in ("development", "production"):
        env_body = {"key": key, "development": key == "development"}
        assert client.post(f"{P}/environments", json=env_body).status_code == 201
    segment = {"key": "beta", "rules": [{"id": "corp", "clauses": [CORP]}], "reason": "beta"}
    assert client.post(f"{P}/segments", json=segment).status_code == 201
    people = {
        "editor": add_principal(services, "erin", [("shop", "editor")]),
        "approver": add_principal(services, "ava", [("shop", "approver")]),
    }
    behaviors = (
        ("agent", "high", ["payments"], "team-a"),
        ("search", "medium", ["catalog"], "team-b"),
        ("banner", "low", ["payments", "ui"], "team-b"),
    )
    for key, tier, tags, owner in behaviors:
        body: dict[str, Any] = {
            "key": key, "kind": "mode", "risk_tier": tier, "tags": tags, "owner": owner,
        }  # fmt: skip
        answer = client.post(f"{P}/flags", json=body | {"reason": "generated path"})
        assert answer.status_code == 201, answer.text
        for env in ("development", "production"):
            answer = _patch(
                client, {"on": True, "default": FULL, "reason": "live"}, key=key, env=env
            )
            if answer.status_code == 202:  # high risk outside development: approved
                _approve_and_apply(client, answer.json()["id"], people["approver"])
            else:
                assert answer.status_code == 200, answer.text
    # Production is protected once live (protecting is a reduction: no approval).
    production = client.get(f"{P}/environments/production")
    protect = client.patch(
        f"{P}/environments/production",
        json={"protected": True, "reason": "live"},
        headers={"If-Match": production.headers["ETag"]},
    )
    assert protect.status_code == 200, protect.text
    return people


def _patch(
    http: TestClient, body: dict[str, Any], *, key: str = "agent", env: str = "production",
    token: str | None = None,
) -> Any:  # fmt: skip
    headers = {} if token is None else bearer(token)
    current = http.get(_config(key, env), headers=headers)
    assert current.status_code == 200, current.text
    headers["If-Match"] = current.headers["ETag"]
    return http.patch(_config(key, env), json=body, headers=headers)


def _eval(
    http: TestClient, key: str = "agent", env: str = "production", **context: Any
) -> tuple[str, str, str | None]:
    body = {"flag": key, "context": {"key": "u1", **context}}
    answer = http.post(f"{P}/environments/{env}/evaluate", json=body)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    return result["variation"], result["reason"], result["rule_id"]


def _post(http: TestClient, path: str, body: dict[str, Any], token: str | None = None) -> Any:
    return http.post(path, json=body, headers={} if token is None else bearer(token))


def _restore(http: TestClient, token: str, key: str = "agent", env: str = "production") -> Any:
    etag = http.get(_config(key, env)).headers["ETag"]
    return http.post(
        _config(key, env) + "/restore",
        json={"reason": "fixed"},
        headers=bearer(token) | {"If-Match": etag},
    )


def _approve_and_apply(http: TestClient, request_id: int, token: str) -> None:
    approved = _post(http, f"/api/v1/change-requests/{request_id}/approve", {}, token)
    assert approved.status_code == 200, approved.text
    applied = _post(http, f"/api/v1/change-requests/{request_id}/apply", {}, token)
    assert applied.status_code == 200, applied.text


def _actions(http: TestClient) -> list[str]:
    items = http.get("/api/v1/audit", params={"limit": 200}).json()["items"]
    return [item["action"] for item in items]


# --- the kill switch ------------------------------------------------------------------------


def test_kill_serves_the_fallback_to_everyone_at_once_without_approval(
    client: TestClient, team: dict[str, str]
) -> None:
    assert _eval(client) == ("full", "FALLTHROUGH", None)
    killed = _post(
        client, f"{P}/flags/agent/kill", {"environments": ["production"], "reason": "bad"},
        team["editor"],
    )  # fmt: skip
    assert killed.status_code == 200, killed.text
    assert killed.json()["environments"][0] | {"version": 0} == {
        "environment": "production", "killed": True, "changed": True, "version": 0,
        "serves": "off",
    }  # fmt: skip
    assert _eval(client) == ("off", "KILLED", None)
    assert _eval(client, env="development") == ("full", "FALLTHROUGH", None)
    entry = client.get("/api/v1/audit", params={"action": "flag:killed"}).json()["items"][0]
    assert (entry["reason"], entry["actor_name"], entry["environment"]) == (
        "bad",
        "erin",
        "production",
    )
    assert entry["evidence"]["policy"]["outcome"] == "apply"


def test_kill_in_every_environment_and_again_changes_nothing(
    client: TestClient, team: dict[str, str]
) -> None:
    body = {"all_environments": True, "reason": "stop it everywhere"}
    first = _post(client, f"{P}/flags/agent/kill", body).json()["environments"]
    assert [(e["environment"], e["changed"]) for e in first] == [
        ("development", True),
        ("production", True),
    ]
    again = _post(client, f"{P}/flags/agent/kill", body).json()["environments"]
    assert [e["changed"] for e in again] == [False, False]
    assert _eval(client, env="development")[1] == "KILLED"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"environments": ["production"], "reason": ""}, "reason"),
        ({"environments": ["production"]}, "reason"),
        ({"reason": "x"}, "environments"),
        ({"environments": ["production"], "all_environments": True, "reason": "x"}, "environments"),
    ],
)
def test_a_kill_needs_a_reason_and_its_environments(
    client: TestClient, team: dict[str, str], body: dict[str, Any], field: str
) -> None:
    answer = _post(client, f"{P}/flags/agent/kill", body)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert field in {e["field"].split(".")[-1] for e in answer.json()["errors"]}
    assert _eval(client)[1] == "FALLTHROUGH"


def test_restore_is_governed_and_puts_back_what_was_live(
    client: TestClient, team: dict[str, str]
) -> None:
    rule = {"id": "corp", "clauses": [CORP], "serve": {"variation": "off"}}
    assert _patch(client, {"rules": [rule], "reason": "corp off"}).status_code == 200
    before = (_eval(client), _eval(client, email="a@corp.example"))
    _post(client, f"{P}/flags/agent/kill", {"environments": ["production"], "reason": "bad"})
    answer = _restore(client, team["editor"])
    assert answer.status_code == 202, answer.text  # high risk, protected: one approval
    assert answer.json()["policy"]["direction"] == "expansion"
    assert _eval(client)[1] == "KILLED"
    _approve_and_apply(client, answer.json()["id"], team["approver"])
    assert (_eval(client), _eval(client, email="a@corp.example")) == before
    assert "flag:restored" in _actions(client)


def test_restore_after_an_edit_made_during_the_kill(
    client: TestClient, team: dict[str, str]
) -> None:
    assert _patch(client, {"default": {"variation": "observe"}, "reason": "x"}).status_code == 200
    _post(client, f"{P}/flags/agent/kill", {"environments": ["production"], "reason": "bad"})
    # During the kill an expansion of what lies underneath still waits for its approval...
    vip = [{"variation": "full", "values": ["vip"]}]
    widen = _patch(
        client, {"default": FULL, "targets": vip, "reason": "more"}, token=team["editor"]
    )
    assert widen.status_code == 202, widen.text
    assert "once the kill or incident is lifted" in " ".join(widen.json()["policy"]["reasons"])
    # ...while a reduction applies at once, and is what the restore brings back.
    narrow = _patch(client, {"default": {"variation": "fallback"}, "reason": "less"})
    assert narrow.status_code == 200, narrow.text
    edit_version = narrow.json()["version"]
    restore = _restore(client, team["editor"])
    assert restore.status_code == 202, restore.text
    assert restore.json()["change"]["refs"] == {"edited_during_kill": [edit_version]}
    assert _eval(client)[1] == "KILLED"
    _approve_and_apply(client, restore.json()["id"], team["approver"])
    assert "killed" not in client.get(_config()).json()
    assert _eval(client) == ("fallback", "FALLTHROUGH", None)


def test_restore_of_a_behavior_that_is_not_killed_is_refused(
    client: TestClient, team: dict[str, str]
) -> None:
    answer = _restore(client, team["editor"])
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "environment"


# --- targeted rollback ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("audience", "excluded", "kept", "rule"),
    [
        ("segment:beta", {"email": "a@corp.example"}, {"email": "a@else.example"}, "segment-beta"),
        (
            "account:acme,globex",
            {"account": "globex"},
            {"account": "initech"},
            "account-acme-globex",
        ),
        ("region:eu", {"region": "eu"}, {"region": "us"}, "region-eu"),
        ("plan=free", {"plan": "free"}, {"plan": "pro"}, "plan-free"),
    ],
)
def test_targeted_rollback_serves_the_fallback_to_one_audience_only(
    client: TestClient,
    team: dict[str, str],
    audience: str,
    excluded: dict[str, str],
    kept: dict[str, str],
    rule: str,
) -> None:
    # An individual target inside the audience is rolled back too.
    target = _patch(client, {"targets": [{"variation": "full", "values": ["u1"]}], "reason": "u1"})
    assert target.status_code == 200, target.text
    answer = _post(
        client, _config() + "/exclusions", {"audience": audience, "reason": "errors"},
        team["editor"],
    )  # fmt: skip
    assert answer.status_code == 201, answer.text
    assert _eval(client, **excluded) == ("off", "EXCLUDED", rule)
    assert _eval(client, **kept) == ("full", "TARGET_MATCH", None)
    listed = client.get(_config() + "/exclusions").json()
    assert [x["id"] for x in listed["exclusions"]] == [rule]
    # Lifting it is an expansion: in production, for a high-risk behavior, it waits.
    lift = _post(client, _config() + f"/exclusions/{rule}/lift", {"reason": "ok"}, team["editor"])
    assert lift.status_code == 202, lift.text
    _approve_and_apply(client, lift.json()["id"], team["approver"])
    assert _eval(client, **excluded) == ("full", "TARGET_MATCH", None)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"audience": "planet:mars", "reason": "x"}, "audience"),
        ({"audience": "segment:", "reason": "x"}, "audience"),
        ({"audience": "segment:nope", "reason": "x"}, "exclusions[0].clauses[0].values[0]"),
        ({"audience": "region:eu", "reason": ""}, "reason"),
    ],
)
def test_a_bad_rollback_names_the_field_and_changes_nothing(
    client: TestClient, team: dict[str, str], body: dict[str, Any], field: str
) -> None:
    version = client.get(_config()).json()["version"]
    answer = _post(client, _config() + "/exclusions", body)
    assert answer.status_code == 422, answer.text
    assert field in [e["field"] for e in answer.json()["errors"]]
    assert client.get(_config()).json()["version"] == version


# --- incident mode --------------------------------------------------------------------------


def _start(client: TestClient, token: str | None = None, **scope: Any) -> Any:
    body = {"environment": "production", "reason": "payments degraded"} | scope
    return _post(client, f"{P}/incidents", body, token)


@pytest.mark.parametrize(
    ("scope", "covered"),
    [
        ({}, ["agent", "banner", "search"]),
        ({"tags": ["payments"]}, ["agent", "banner"]),
        ({"min_risk": "medium"}, ["agent", "search"]),
        ({"owner": "team-b"}, ["banner", "search"]),
        ({"tags": ["payments"], "owner": "team-b"}, ["banner"]),
    ],
)
def test_incident_scope_by_tag_risk_and_owner(
    client: TestClient, team: dict[str, str], scope: dict[str, Any], covered: list[str]
) -> None:
    preview = _start(client, dry_run=True, **scope)
    assert preview.status_code == 200, preview.text
    assert [p["flag"] for p in preview.json()["would_fall_back"]] == covered
    assert all(_eval(client, key)[1] == "FALLTHROUGH" for key in ("agent", "search", "banner"))
    started = _start(client, team["editor"], **scope)
    assert started.status_code == 201, started.text
    assert started.json()["covered"] == covered
    for key in ("agent", "search", "banner"):
        expected = ("off", "INCIDENT", None) if key in covered else ("full", "FALLTHROUGH", None)
        assert _eval(client, key) == expected
        assert _eval(client, key, env="development")[1] == "FALLTHROUGH"


def test_overlapping_incidents_end_restores_exactly_what_each_covered(
    client: TestClient, team: dict[str, str]
) -> None:
    observe = {"default": {"variation": "observe"}, "reason": "x"}
    assert _patch(client, observe, key="banner").status_code == 200
    before = {k: _eval(client, k) for k in ("agent", "search", "banner")}
    first = _start(client, tags=["payments"]).json()  # agent, banner
    second = _start(client, owner="team-b").json()  # banner, search
    _post(client, f"{P}/flags/search/kill", {"environments": ["production"], "reason": "x"})
    ended = _post(client, f"{P}/incidents/{first['id']}/end", {"reason": "mitigated"})
    assert ended.status_code == 200, ended.text
    assert ended.json()["state"] == "ended"
    assert _eval(client, "agent") == before["agent"]
    assert _eval(client, "banner")[1] == "INCIDENT"  # the second still covers it
    assert _eval(client, "search")[1] == "KILLED"
    _post(client, f"{P}/incidents/{second['id']}/end", {"reason": "resolved"})
    assert _eval(client, "banner") == before["banner"]
    assert _eval(client, "search")[1] == "KILLED"  # ending an incident never lifts a kill
    again = _post(client, f"{P}/incidents/{second['id']}/end", {"reason": "twice"})
    assert again.status_code == 409
    history = client.get(f"{P}/incidents", params={"state": "ended"}).json()["items"]
    assert [(i["id"], i["ended_by"], i["end_reason"]) for i in history] == [
        (second["id"], "admin", "resolved"),
        (first["id"], "admin", "mitigated"),
    ]


def test_ending_an_incident_needs_an_approver(client: TestClient, team: dict[str, str]) -> None:
    incident = _start(client, team["editor"]).json()
    refused = _post(client, f"{P}/incidents/{incident['id']}/end", {"reason": "x"}, team["editor"])
    assert refused.status_code == 403
    ended = _post(client, f"{P}/incidents/{incident['id']}/end", {"reason": "x"}, team["approver"])
    assert ended.status_code == 200, ended.text
    assert client.get(f"{P}/incidents/{incident['id']}").json()["ended_by"] == "ava"


def test_a_bad_incident_names_the_field(client: TestClient, team: dict[str, str]) -> None:
    for body, field in (
        ({"min_risk": "severe"}, "min_risk"),
        ({"reason": ""}, "reason"),
        ({"environment": "moon"}, None),
    ):
        answer = _start(client, **body)
        if field is None:
            assert answer.status_code == 404
            continue
        assert answer.status_code == 422, answer.text
        assert field in [e["field"] for e in answer.json()["errors"]]
    assert client.get(f"{P}/incidents").json()["items"] == []


def test_expansions_freeze_on_every_write_path_and_reductions_still_work(
    client: TestClient, team: dict[str, str], services: Services
) -> None:
    # A change request approved before the incident, one scheduled, and a version to revert.
    lower = _patch(client, {"default": {"variation": "observe"}, "reason": "lower"})
    assert lower.status_code == 200, lower.text
    proposed = _patch(client, {"targets": [{"variation": "full", "values": ["vip"]}],
                               "reason": "vip"}, token=team["editor"])  # fmt: skip
    assert proposed.status_code == 202, proposed.text
    request_id = proposed.json()["id"]
    approve = _post(client, f"/api/v1/change-requests/{request_id}/approve", {}, team["approver"])
    assert approve.status_code == 200
    beta_rule = {"id": "b", "clauses": [{"op": "segment_match", "values": ["beta"]}], "serve": FULL}
    beta = _patch(client, {"rules": [beta_rule], "default": {"variation": "off"}, "reason": "b"},
                  key="banner")  # fmt: skip
    assert beta.status_code == 200, beta.text
    incident = _start(client, tags=["payments"]).json()
    frozen = f"incident #{incident['id']}"

    def refused(answer: Any) -> None:
        assert answer.status_code == 403, answer.text
        assert frozen in answer.json()["detail"]

    # direct configuration writes (the administrator too)
    refused(_patch(client, {"default": FULL, "reason": "up"}))
    refused(_patch(client, {"default": FULL, "reason": "up"}, key="banner"))
    # a revert to the wider version
    versions = client.get(_config() + "/versions").json()["items"]
    wider = next(v["version"] for v in versions if v["config"]["default"] == FULL)
    etag = client.get(_config()).headers["ETag"]
    refused(client.post(_config() + "/revert", json={"to_version": wider, "reason": "back"},
                        headers={"If-Match": etag}))  # fmt: skip
    # a definition change that widens (client-side visibility)
    flag = client.get(f"{P}/flags/agent")
    refused(client.patch(f"{P}/flags/agent", json={"client_visible": True, "reason": "x"},
                         headers={"If-Match": flag.headers["ETag"]}))  # fmt: skip
    # a segment edit that widens a rule of a behavior in scope (banner, in production)
    segment = client.get(f"{P}/segments/beta")
    wider_rules = [{"id": "corp", "clauses": [CORP]}, {"id": "all", "clauses": [
        {"attribute": "key", "op": "starts_with", "values": ["u"]}]}]  # fmt: skip
    refused(client.patch(f"{P}/segments/beta", json={"rules": wider_rules, "reason": "x"},
                         headers={"If-Match": segment.headers["ETag"]}))  # fmt: skip
    # an approved change request, applied by hand and by the schedule
    refused(_post(client, f"/api/v1/change-requests/{request_id}/apply", {}, team["approver"]))
    assert client.get(f"/api/v1/change-requests/{request_id}").json()["state"] == "approved"
    when = (services.clock() + timedelta(minutes=1)).isoformat()
    scheduled = client.put(f"/api/v1/change-requests/{request_id}/schedule",
                           json={"apply_at": when}, headers=bearer(team["editor"]))  # fmt: skip
    assert scheduled.status_code == 200, scheduled.text
    later = services.clock() + timedelta(minutes=5)
    services.clock = lambda: later
    jobs = BackgroundJobs(
        services, standard_jobs(services, checkpoint_every=10, checkpoint_minutes=0)
    )
    assert (jobs.run_once() or {})["change-request-schedule"] == 0
    assert client.get(f"/api/v1/change-requests/{request_id}").json()["state"] == "approved"
    # outside the scope nothing is frozen, and reductions go through inside it
    assert _patch(client, {"default": FULL, "reason": "up"}, key="search").status_code == 200
    down = _patch(client, {"rules": [], "reason": "down"}, key="banner")
    assert down.status_code == 200, down.text
    # once the incident ends, the approved request applies
    _post(client, f"{P}/incidents/{incident['id']}/end", {"reason": "over"})
    assert (jobs.run_once() or {})["change-request-schedule"] == 1
    assert client.get(f"/api/v1/change-requests/{request_id}").json()["state"] == "applied"


def test_reversal_is_audited_and_the_chain_verifies(
    client: TestClient, team: dict[str, str], services: Services
) -> None:
    _post(client, f"{P}/flags/agent/kill", {"environments": ["production"], "reason": "k"})
    _post(client, _config("search") + "/exclusions", {"audience": "region:eu", "reason": "r"})
    incident = _start(client).json()
    _post(client, f"{P}/incidents/{incident['id']}/end", {"reason": "done"})
    actions = _actions(client)
    for action in ("flag:killed", "flag:excluded", "incident:started", "incident:ended"):
        assert action in actions
    started = client.get("/api/v1/audit", params={"action": "incident:started"}).json()["items"]
    assert started[0]["refs"] == {"incident": incident["id"]}
    assert started[0]["after"]["covered"] == ["agent", "banner", "search"]
    assert services.signer is not None
    report = verify_database(services.database, public_key=services.signer.public_key)
    assert report.ok, report


def test_a_percentage_reduction_and_a_revert_say_whether_they_reduced_or_expanded(
    client: TestClient, team: dict[str, str]
) -> None:
    def split(percent: int) -> dict[str, Any]:
        weight = percent * 1000
        return {"split": [{"variation": "full", "weight": weight},
                          {"variation": "off", "weight": 100_000 - weight}]}  # fmt: skip

    assert _patch(client, {"default": split(20), "reason": "20 %"}).status_code == 200
    lower = _patch(client, {"default": split(5), "reason": "5 %"}, token=team["editor"])
    assert lower.status_code == 200, lower.text
    assert lower.json()["policy"] == {
        "outcome": "apply", "direction": "reduction", "rule": "reduction-immediate",
    }  # fmt: skip
    wider = next(
        v["version"]
        for v in client.get(_config() + "/versions").json()["items"]
        if v["config"]["default"] == split(20)
    )
    etag = client.get(_config()).headers["ETag"]
    revert = client.post(
        _config() + "/revert",
        json={"to_version": wider, "reason": "back to 20 %"},
        headers=bearer(team["editor"]) | {"If-Match": etag},
    )
    assert revert.status_code == 202, revert.text  # a wider version: governed
    assert revert.json()["policy"]["direction"] == "expansion"


def test_a_kill_everywhere_by_someone_who_may_not_edit_everywhere_kills_nothing(
    client: TestClient, team: dict[str, str], services: Services
) -> None:
    dev_only = add_principal(
        services, "dee", [("shop", "viewer"), ("shop", "editor", "development")]
    )
    body = {"all_environments": True, "reason": "stop"}
    refused = _post(client, f"{P}/flags/agent/kill", body, dev_only)
    assert refused.status_code == 403, refused.text
    assert _eval(client, env="development")[1] == "FALLTHROUGH"
    assert _eval(client)[1] == "FALLTHROUGH"


def test_ending_an_incident_lifts_its_mark_from_an_archived_behavior_too(
    client: TestClient, team: dict[str, str]
) -> None:
    incident = _start(client, tags=["ui"]).json()
    assert incident["covered"] == ["banner"]
    flag = client.get(f"{P}/flags/banner")
    archive = {"archived": True, "reason": "gone"}
    archived = client.patch(
        f"{P}/flags/banner", json=archive, headers={"If-Match": flag.headers["ETag"]}
    )
    assert archived.status_code == 200, archived.text
    _post(client, f"{P}/incidents/{incident['id']}/end", {"reason": "over"})
    assert "incidents" not in client.get(_config("banner")).json()
