"""API tokens: shown once, hashed at rest, expiring, revocable at once, never wider than
their creator."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from lockgate.control.base import Services, iso, utc_now
from lockgate.control.identity.credentials import hash_secret
from lockgate.store.tables import api_tokens
from tests.api.identity_helpers import (
    audit_text,
    bearer,
    grant,
    make_project,
    make_user,
    session_token,
    use_cheap_hashing,
)


@pytest.fixture(autouse=True)
def _cheap_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    use_cheap_hashing(monkeypatch)


def _all_token_rows(services: Services) -> str:
    with services.view() as conn:
        return json.dumps([list(r) for r in conn.execute(select(api_tokens)).all()], default=str)


def test_token_is_shown_once_and_only_its_hash_is_stored(
    client: TestClient, services: Services
) -> None:
    r = client.post("/api/v1/tokens", json={"name": "ci", "expires_in_days": 30})
    assert r.status_code == 201, r.text
    created = r.json()
    value = created["token"]
    assert value.startswith(f"lgt_{created['prefix']}_")
    stored = _all_token_rows(services)
    assert value not in stored
    assert value.split("_", 2)[2] not in stored
    assert hash_secret(value) in stored
    assert value not in audit_text(services)
    listed = client.get("/api/v1/tokens").json()["items"]
    assert [t["name"] for t in listed] == ["bootstrap admin token", "ci"]
    assert all("token" not in t and "secret_hash" not in t for t in listed)
    assert value not in json.dumps(listed)
    ci = listed[1]
    assert ci["expires_at"] > iso(utc_now() + timedelta(days=29))
    assert (ci["revoked"], ci["last_used_at"]) == (False, None)
    assert TestClient(client.app).get("/api/v1/projects", headers=bearer(value)).status_code == 200
    used = client.get("/api/v1/tokens").json()["items"][1]
    assert used["last_used_at"] is not None


def test_revocation_is_immediate_and_audited(client: TestClient, services: Services) -> None:
    created = client.post("/api/v1/tokens", json={"name": "short-lived"}).json()
    other = TestClient(client.app, headers=bearer(created["token"]))
    assert other.get("/api/v1/projects").status_code == 200
    r = client.delete(
        f"/api/v1/tokens/{created['prefix']}", headers={"X-Lockgate-Reason": "leaked"}
    )
    assert r.status_code == 200
    assert r.json()["revoked"] is True
    r = other.get("/api/v1/projects")
    assert r.status_code == 401
    assert "revoked" in r.json()["detail"]
    assert client.delete(f"/api/v1/tokens/{created['prefix']}").status_code == 200  # idempotent
    assert client.delete("/api/v1/tokens/000000000000").status_code == 404
    assert '"token:revoked"' in audit_text(services)
    assert "leaked" in audit_text(services)


def test_tokens_expire(client: TestClient, services: Services) -> None:
    created = client.post("/api/v1/tokens", json={"name": "day", "expires_in_days": 1}).json()
    holder = TestClient(client.app, headers=bearer(created["token"]))
    assert holder.get("/api/v1/projects").status_code == 200
    later = utc_now() + timedelta(days=1, minutes=1)
    services.clock = lambda: later
    r = holder.get("/api/v1/projects")
    assert r.status_code == 401
    assert "expired" in r.json()["detail"]


def test_bad_expiry_names_the_field(client: TestClient) -> None:
    past = iso(utc_now() - timedelta(hours=1))
    r = client.post("/api/v1/tokens", json={"name": "x", "expires_at": past})
    assert [e["field"] for e in r.json()["errors"]] == ["expires_at"]
    r = client.post(
        "/api/v1/tokens",
        json={"name": "x", "expires_at": "2999-01-01T00:00:00Z", "expires_in_days": 3},
    )
    assert [e["field"] for e in r.json()["errors"]] == ["expires_in_days"]
    r = client.post("/api/v1/tokens", json={"name": "x", "max_role": "owner"})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "max_role"


def test_a_token_never_exceeds_its_creator(client: TestClient, app: FastAPI) -> None:
    make_project(client, "shop")
    make_project(client, "bank")
    make_user(client, "ed")
    grant(client, "shop", "ed", "editor")
    ed_token = session_token(app, "ed")
    ed = TestClient(app, headers=bearer(ed_token))
    r = ed.post("/api/v1/tokens", json={"name": "x", "project": "shop", "max_role": "admin"})
    assert r.status_code == 403
    assert "editor" in r.json()["detail"]
    assert ed.post("/api/v1/tokens", json={"name": "x", "project": "bank"}).status_code == 404
    narrow = ed.post(
        "/api/v1/tokens", json={"name": "v", "project": "shop", "max_role": "viewer"}
    ).json()
    assert (narrow["project"], narrow["max_role"]) == ("shop", "viewer")
    viewer = TestClient(app, headers=bearer(narrow["token"]))
    assert viewer.get("/api/v1/projects/shop").status_code == 200
    assert (
        viewer.post("/api/v1/projects/shop/flags", json={"key": "f", "kind": "boolean"}).status_code
        == 403
    )
    assert (
        ed.post("/api/v1/projects/shop/flags", json={"key": "f", "kind": "boolean"}).status_code
        == 201
    )
    # A token made with a narrowed token inherits its narrowing and cannot widen it.
    child = viewer.post("/api/v1/tokens", json={"name": "child"}).json()
    assert (child["project"], child["max_role"]) == ("shop", "viewer")
    assert (
        viewer.post("/api/v1/tokens", json={"name": "c", "max_role": "editor"}).status_code == 403
    )
    assert viewer.post("/api/v1/tokens", json={"name": "c", "project": "bank"}).status_code == 404


def test_a_token_cannot_outlive_the_token_that_made_it(client: TestClient) -> None:
    parent = client.post("/api/v1/tokens", json={"name": "p", "expires_in_days": 2}).json()
    holder = TestClient(client.app, headers=bearer(parent["token"]))
    child = holder.post("/api/v1/tokens", json={"name": "c"}).json()
    assert child["expires_at"] == parent["expires_at"]
    r = holder.post("/api/v1/tokens", json={"name": "c", "expires_in_days": 30})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "expires_at"


def test_admins_make_tokens_for_service_accounts_only(client: TestClient, app: FastAPI) -> None:
    make_project(client, "shop")
    make_user(client, "bot", kind="service")
    make_user(client, "alice")
    grant(client, "shop", "bot", "editor")
    r = client.post("/api/v1/tokens", json={"name": "ci", "user": "bot", "project": "shop"})
    assert r.status_code == 201
    assert r.json()["user"] == "bot"
    bot = TestClient(app, headers=bearer(r.json()["token"]))
    assert (
        bot.post("/api/v1/projects/shop/flags", json={"key": "f", "kind": "boolean"}).status_code
        == 201
    )
    assert client.post("/api/v1/tokens", json={"name": "x", "user": "alice"}).status_code == 403
    alice = TestClient(app, headers=bearer(session_token(app, "alice")))
    assert alice.post("/api/v1/tokens", json={"name": "x", "user": "bot"}).status_code == 403


def test_people_list_and_revoke_only_their_own_tokens(client: TestClient, app: FastAPI) -> None:
    make_user(client, "alice")
    make_user(client, "bob")
    alice = TestClient(app, headers=bearer(session_token(app, "alice")))
    bob_token = session_token(app, "bob")
    mine = alice.get("/api/v1/tokens").json()["items"]
    assert [t["user"] for t in mine] == ["alice"]
    assert alice.get("/api/v1/tokens", params={"user": "bob"}).status_code == 403
    bob_prefix = bob_token.split("_")[1]
    assert alice.delete(f"/api/v1/tokens/{bob_prefix}").status_code == 404
    everyone = client.get("/api/v1/tokens").json()["items"]
    assert {t["user"] for t in everyone} == {"admin", "alice", "bob"}
    assert [
        t["user"] for t in client.get("/api/v1/tokens", params={"user": "bob"}).json()["items"]
    ] == ["bob"]
    assert client.delete(f"/api/v1/tokens/{bob_prefix}").status_code == 200
    assert TestClient(app).get("/api/v1/projects", headers=bearer(bob_token)).status_code == 401


def test_sdk_keys_cannot_call_the_management_api(client: TestClient) -> None:
    make_project(client, "shop")
    key = client.post(
        "/api/v1/projects/shop/environments/staging/sdk-keys", json={"kind": "server"}
    ).json()["key"]
    r = TestClient(client.app).get("/api/v1/projects", headers=bearer(key))
    assert r.status_code == 401
    assert "SDK key cannot call the management API" in r.json()["detail"]


def test_a_revocation_by_another_replica_is_seen_within_the_cache_lifetime(
    client: TestClient, services: Services
) -> None:
    created = client.post("/api/v1/tokens", json={"name": "busy"}).json()
    holder = TestClient(client.app, headers=bearer(created["token"]))
    services.principals.ttl = 0.2
    assert holder.get("/api/v1/projects").status_code == 200
    # Another replica revokes it: this process learns nothing but the database.
    with services.database.write() as conn:
        conn.execute(
            update(api_tokens)
            .where(api_tokens.c.prefix == created["prefix"])
            .values(revoked_at=services.now())
        )
    deadline = time.monotonic() + 5.0
    while holder.get("/api/v1/projects").status_code == 200:
        assert time.monotonic() < deadline, "a revoked token kept working"
        time.sleep(0.05)
    assert holder.get("/api/v1/projects").status_code == 401


def test_an_identity_change_here_empties_the_principal_cache(
    client: TestClient, services: Services
) -> None:
    created = client.post("/api/v1/tokens", json={"name": "busy"}).json()
    holder = TestClient(client.app, headers=bearer(created["token"]))
    assert holder.get("/api/v1/projects").status_code == 200
    assert services.principals.get(created["token"]) is not None
    client.post("/api/v1/tokens", json={"name": "another"})
    assert services.principals.get(created["token"]) is None


def test_re_enabling_a_disabled_user_does_not_revive_their_tokens(
    client: TestClient, app: FastAPI, services: Services
) -> None:
    make_user(client, "alice")
    first, second = session_token(app, "alice"), session_token(app, "alice")
    assert client.get("/api/v1/auth/me", headers=bearer(first)).status_code == 200
    version = client.get("/api/v1/users/alice").json()["version"]
    r = client.patch(
        "/api/v1/users/alice", json={"disabled": True}, headers={"If-Match": f'"{version}"'}
    )
    assert r.status_code == 200, r.text
    r = client.patch(
        "/api/v1/users/alice", json={"disabled": False}, headers={"If-Match": f'"{version + 1}"'}
    )
    assert r.status_code == 200, r.text
    for token in (first, second):
        r = client.get("/api/v1/auth/me", headers=bearer(token))
        assert r.status_code == 401
        assert r.json()["detail"] == "this API token has been revoked"
    entry = json.loads(audit_text(services))[-2]  # the disabling, then the re-enabling
    assert entry["evidence"]["revoked_tokens"] == [t.split("_")[1] for t in (first, second)]
    assert session_token(app, "alice")  # alice can work again, with a new token
