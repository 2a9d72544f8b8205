"""Project members: role grants per project and environment; nobody grants themselves."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from lockgate.control.base import Caller, Services
from lockgate.control.identity import members
from lockgate.errors import PermissionDenied
from lockgate.policy.access import Grant, Principal, Role
from tests.api.identity_helpers import (
    audit_rows,
    bearer,
    grant,
    make_project,
    make_user,
    session_token,
    use_cheap_hashing,
)

MEMBERS = "/api/v1/projects/shop/members"


@pytest.fixture(autouse=True)
def _cheap_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    use_cheap_hashing(monkeypatch)


def test_grant_read_and_revoke_members_with_audit(
    client: TestClient, app: FastAPI, services: Services
) -> None:
    make_project(client, "shop")
    make_user(client, "alice")
    r = client.put(f"{MEMBERS}/alice", json={"role": "viewer", "reason": "onboarding"})
    assert r.status_code == 200, r.text
    r = client.put(f"{MEMBERS}/alice", json={"role": "editor", "environment": "staging"})
    assert [(g["role"], g["environment"]) for g in r.json()["grants"]] == [
        ("viewer", None),
        ("editor", "staging"),
    ]
    listed = client.get(MEMBERS).json()["items"]
    assert [(m["username"], m["role"], m["environment"]) for m in listed] == [
        ("alice", "viewer", None),
        ("alice", "editor", "staging"),
    ]
    alice = TestClient(app, headers=bearer(session_token(app, "alice")))
    assert alice.get(f"{MEMBERS}/alice").status_code == 200  # members may read members
    flag = {"key": "f", "kind": "boolean"}
    assert client.post("/api/v1/projects/shop/flags", json=flag).status_code == 201
    config = "/api/v1/projects/shop/flags/f/environments/{}"
    body = {"on": True, "reason": "try"}
    assert (
        alice.patch(config.format("staging"), json=body, headers={"If-Match": '"1"'}).status_code
        == 200
    )
    assert (
        alice.patch(config.format("production"), json=body, headers={"If-Match": '"1"'}).status_code
        == 403
    )
    r = client.delete(
        f"{MEMBERS}/alice", params={"environment": "staging"}, headers={"X-Lockgate-Reason": "done"}
    )
    assert r.status_code == 204
    assert (
        alice.patch(config.format("staging"), json=body, headers={"If-Match": '"2"'}).status_code
        == 403
    )
    assert client.delete(f"{MEMBERS}/alice").status_code == 204
    assert client.get(f"{MEMBERS}/alice").status_code == 404
    assert alice.get("/api/v1/projects/shop").status_code == 404  # no longer sees the project
    granted = audit_rows(services, "member:granted")
    assert [(e["environment"], e["before"], e["after"]) for e in granted] == [
        (None, None, {"role": "viewer"}),
        ("staging", None, {"role": "editor"}),
    ]
    assert granted[0]["reason"] == "onboarding"
    revoked = audit_rows(services, "member:revoked")
    assert [e["environment"] for e in revoked] == ["staging", None]
    assert revoked[0]["reason"] == "done"
    assert revoked[1]["before"] == {"grants": [{"role": "viewer", "environment": None}]}


def test_nobody_can_grant_or_change_their_own_roles(client: TestClient, app: FastAPI) -> None:
    make_project(client, "shop")
    make_user(client, "pat")
    make_user(client, "alice")
    grant(client, "shop", "pat", "admin")
    pat = TestClient(app, headers=bearer(session_token(app, "pat")))
    for body in ({"role": "admin"}, {"role": "admin", "environment": "production"}):
        r = pat.put(f"{MEMBERS}/pat", json=body)
        assert r.status_code == 403
        assert "own" in r.json()["detail"]
    assert pat.delete(f"{MEMBERS}/pat").status_code == 403
    assert client.put(f"{MEMBERS}/admin", json={"role": "admin"}).status_code == 403
    assert pat.put(f"{MEMBERS}/alice", json={"role": "admin"}).status_code == 200  # others: fine


def test_only_project_admins_manage_members(client: TestClient, app: FastAPI) -> None:
    make_project(client, "shop")
    make_project(client, "bank")
    for name in ("ed", "alice"):
        make_user(client, name)
    grant(client, "shop", "ed", "editor")
    ed = TestClient(app, headers=bearer(session_token(app, "ed")))
    assert ed.put(f"{MEMBERS}/alice", json={"role": "viewer"}).status_code == 403
    assert ed.put("/api/v1/projects/bank/members/alice", json={"role": "viewer"}).status_code == 404
    assert client.put(f"{MEMBERS}/nobody", json={"role": "viewer"}).status_code == 404
    r = client.put(f"{MEMBERS}/alice", json={"role": "viewer", "environment": "nowhere"})
    assert r.status_code == 404
    r = client.put(f"{MEMBERS}/alice", json={"role": "owner"})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "role"
    assert client.delete(f"{MEMBERS}/alice", params={"environment": "staging"}).status_code == 404


def test_a_grant_never_exceeds_the_granters_own_role() -> None:
    # Defence in depth: ADMIN_PROJECT already implies the top role; the rank check holds
    # even for a principal whose effective role is lower (e.g. capped by its token).
    capped = Principal(
        user_id=7,
        name="pat",
        grants=(Grant(project_id=1, role=Role.ADMIN),),
        token_id=1,
        token_max_role=Role.EDITOR,
    )
    caller = Caller(capped, "req")
    members._check_within_own(caller, 1, None, Role.EDITOR)
    with pytest.raises(PermissionDenied, match="above your own"):
        members._check_within_own(caller, 1, None, Role.APPROVER)
