"""Users: creation with Argon2 hashes, reading, updating, own password changes; audited."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from lockgate.control.base import Services
from lockgate.store.tables import users
from tests.api.identity_helpers import (
    PASSWORD,
    audit_rows,
    audit_text,
    bearer,
    login,
    make_project,
    make_user,
    session_token,
)


def _stored_hash(services: Services, username: str) -> str | None:
    with services.view() as conn:
        value = conn.execute(
            select(users.c.password_hash).where(users.c.username == username)
        ).scalar_one()
    return None if value is None else str(value)


def test_admin_creates_users_with_argon2_hashes_never_shown_or_audited(
    client: TestClient, services: Services
) -> None:
    view = make_user(client, "alice", is_admin=False)
    assert view["has_password"] is True
    assert "password" not in view
    assert "password_hash" not in view
    stored = _stored_hash(services, "alice")
    assert stored is not None
    assert stored.startswith("$argon2id$")
    service = make_user(client, "deploy-bot", kind="service")
    assert service["kind"] == "service"
    assert service["has_password"] is False
    assert _stored_hash(services, "deploy-bot") is None
    created = audit_rows(services, "user:created")
    assert [e["object_key"] for e in created] == ["admin", "alice", "deploy-bot"]
    text = audit_text(services)
    assert "$argon2" not in text
    assert PASSWORD not in text
    listed = client.get("/api/v1/users").json()
    assert [u["username"] for u in listed["items"]] == ["admin", "alice", "deploy-bot"]


def test_bad_users_are_refused_naming_the_field(client: TestClient) -> None:
    cases = [
        ({"username": "bob", "password": "short"}, 422, "password"),
        ({"username": "bob"}, 422, "password"),
        ({"username": "bot", "kind": "service", "password": PASSWORD}, 422, "password"),
        ({"username": "no spaces", "password": PASSWORD}, 422, "username"),
        ({"username": "bob", "password": PASSWORD, "password_hash": "x"}, 422, "password_hash"),
    ]
    for body, status, field in cases:
        r = client.post("/api/v1/users", json=body)
        assert r.status_code == status, (body, r.text)
        assert [e["field"] for e in r.json()["errors"]] == [field], body
    make_user(client, "bob")
    r = client.post("/api/v1/users", json={"username": "BOB", "password": PASSWORD})
    assert r.status_code == 409


def test_nul_bytes_never_reach_the_database(client: TestClient) -> None:
    """PostgreSQL text cannot hold NUL: such input is refused on both databases (422)."""
    assert (
        client.post("/api/v1/auth/login", json={"username": "a\x00", "password": "x"}).status_code
        == 422
    )
    assert client.get("/api/v1/users/a%00b").status_code == 422
    assert client.delete("/api/v1/tokens/ab%00").status_code == 422
    r = client.get("/api/v1/tokens", params={"user": "a\x00"})
    assert (r.status_code, r.json()["errors"][0]["field"]) == (422, "query")
    r = client.post(
        "/api/v1/users", json={"username": "nul", "display_name": "a\x00", "password": PASSWORD}
    )
    assert r.status_code == 422
    r = client.post("/api/v1/tokens", json={"name": "a\x00"})
    assert r.status_code == 422


def test_users_read_themselves_but_only_admins_manage_users(
    client: TestClient, app: FastAPI
) -> None:
    make_user(client, "alice")
    make_user(client, "bob")
    alice = TestClient(app, headers=bearer(session_token(app, "alice")))
    assert alice.get("/api/v1/users/alice").status_code == 200
    assert alice.get("/api/v1/users/bob").status_code == 403
    assert alice.get("/api/v1/users/nobody").status_code == 403  # no enumeration
    assert alice.get("/api/v1/users").status_code == 403
    assert (
        alice.post("/api/v1/users", json={"username": "eve", "password": PASSWORD}).status_code
        == 403
    )
    r = alice.patch("/api/v1/users/alice", json={"is_admin": True}, headers={"If-Match": '"1"'})
    assert r.status_code == 403
    assert client.get("/api/v1/users/nobody").status_code == 404


def test_admin_updates_users_and_disabling_locks_them_out(
    client: TestClient, app: FastAPI, services: Services
) -> None:
    make_project(client, "shop")
    make_user(client, "alice")
    token = session_token(app, "alice")
    session, _ = login(app, "alice")
    assert session.get("/api/v1/auth/me").status_code == 200
    r = client.patch("/api/v1/users/alice", json={"display_name": "Alice"})
    assert r.status_code == 428
    r = client.patch(
        "/api/v1/users/alice",
        json={"disabled": True, "reason": "left"},
        headers={"If-Match": '"1"'},
    )
    assert r.status_code == 200, r.text
    assert r.json()["disabled"] is True
    assert r.headers["ETag"] == '"2"'
    assert TestClient(app).get("/api/v1/projects", headers=bearer(token)).status_code == 401
    assert session.get("/api/v1/auth/me").status_code == 401
    r = TestClient(app).post("/api/v1/auth/login", json={"username": "alice", "password": PASSWORD})
    assert r.status_code == 401
    entry = audit_rows(services, "user:updated")[-1]
    assert entry["reason"] == "left"
    assert {"path": "disabled", "old": False, "new": True} in entry["changes"]
    r = client.patch("/api/v1/users/alice", json={"disabled": True}, headers={"If-Match": '"1"'})
    assert r.status_code == 409


def test_nobody_changes_their_own_admin_status_or_disables_themselves(client: TestClient) -> None:
    version = client.get("/api/v1/users/admin").json()["version"]
    headers = {"If-Match": f'"{version}"'}
    assert (
        client.patch("/api/v1/users/admin", json={"is_admin": False}, headers=headers).status_code
        == 403
    )
    assert (
        client.patch("/api/v1/users/admin", json={"disabled": True}, headers=headers).status_code
        == 403
    )
    r = client.patch("/api/v1/users/admin", json={"display_name": "Root"}, headers=headers)
    assert r.status_code == 200
    make_user(client, "carol")
    r = client.patch("/api/v1/users/carol", json={"is_admin": True}, headers={"If-Match": '"1"'})
    assert r.status_code == 200
    assert r.json()["is_admin"] is True


def test_change_own_password_needs_the_current_one_and_ends_other_sessions(
    client: TestClient, app: FastAPI, services: Services
) -> None:
    make_user(client, "alice")
    other, _ = login(app, "alice")
    mine, csrf = login(app, "alice")
    path, headers = "/api/v1/auth/password", {"X-CSRF-Token": csrf}
    new = "a-much-better-passphrase"
    r = mine.post(
        path, json={"current_password": "wrong-password!", "new_password": new}, headers=headers
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "current_password"
    r = mine.post(
        path, json={"current_password": PASSWORD, "new_password": "short"}, headers=headers
    )
    assert r.json()["errors"][0]["field"] == "new_password"
    r = mine.post(path, json={"current_password": PASSWORD, "new_password": new}, headers=headers)
    assert r.status_code == 204, r.text
    assert mine.get("/api/v1/auth/me").status_code == 200  # the session used stays valid
    assert other.get("/api/v1/auth/me").status_code == 401  # every other session ended
    anonymous = TestClient(app)
    assert (
        anonymous.post(
            "/api/v1/auth/login", json={"username": "alice", "password": PASSWORD}
        ).status_code
        == 401
    )
    assert (
        anonymous.post(
            "/api/v1/auth/login", json={"username": "alice", "password": new}
        ).status_code
        == 200
    )
    assert [e["object_key"] for e in audit_rows(services, "user:password_changed")] == ["alice"]
    text = audit_text(services)
    assert new not in text
    assert PASSWORD not in text
    assert "$argon2" not in text


def test_service_accounts_cannot_log_in_or_change_passwords(
    client: TestClient, app: FastAPI
) -> None:
    make_user(client, "bot", kind="service")
    r = TestClient(app).post("/api/v1/auth/login", json={"username": "bot", "password": PASSWORD})
    assert r.status_code == 401
    token = client.post("/api/v1/tokens", json={"name": "ci", "user": "bot"}).json()["token"]
    r = TestClient(app, headers=bearer(token)).post(
        "/api/v1/auth/password", json={"current_password": PASSWORD, "new_password": PASSWORD}
    )
    assert r.status_code == 422
