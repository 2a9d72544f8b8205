"""Dashboard sessions: cookie flags, hashed at rest, CSRF, expiry, logout, uniform failures."""

from __future__ import annotations

from datetime import timedelta
from http.cookies import SimpleCookie

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from lockgate.api.app import create_app
from lockgate.control.base import Services, utc_now
from lockgate.control.identity.credentials import hash_secret
from lockgate.settings import Settings
from lockgate.store.tables import sessions
from tests.api.identity_helpers import (
    PASSWORD,
    audit_rows,
    bearer,
    login,
    make_project,
    make_user,
    use_cheap_hashing,
)


@pytest.fixture(autouse=True)
def _cheap_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    use_cheap_hashing(monkeypatch)


def _login(
    app: FastAPI, username: str = "alice", password: str = PASSWORD
) -> tuple[TestClient, dict[str, object]]:
    http = TestClient(app)
    r = http.post("/api/v1/auth/login", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return http, {"cookie": r.headers["set-cookie"], **r.json()}


def test_login_sets_a_strict_http_only_cookie_whose_secret_is_stored_hashed(
    client: TestClient, app: FastAPI, services: Services
) -> None:
    make_user(client, "alice")
    http, answer = _login(app)
    cookie = SimpleCookie()
    cookie.load(str(answer["cookie"]))
    morsel = cookie["lockgate_session"]
    assert morsel["httponly"] is True
    assert str(morsel["samesite"]).lower() == "strict"
    assert morsel["path"] == "/"
    assert not morsel["secure"]  # secure_cookies is off in these settings
    assert int(morsel["max-age"]) == 12 * 3600
    assert set(answer) == {"cookie", "user", "csrf_token", "expires_at"}
    with services.view() as conn:
        rows = conn.execute(select(sessions)).all()
    assert len(rows) == 1
    assert rows[0].secret_hash == hash_secret(morsel.value)
    assert morsel.value not in {str(v) for v in rows[0]}
    # The CSRF token is a credential too: only its hash is stored.
    assert rows[0].csrf_hash == hash_secret(str(answer["csrf_token"]))
    assert answer["csrf_token"] not in {str(v) for v in rows[0]}
    me = http.get("/api/v1/auth/me").json()
    assert me["user"]["username"] == "alice"
    assert me["authenticated_by"] == "session"
    login_entry = audit_rows(services, "auth:login")[-1]
    assert login_entry["actor_name"] == "alice"
    assert login_entry["evidence"]["client_address"] == "testclient"


def test_cookie_is_secure_when_configured(
    settings: Settings, services: Services, admin_token: str
) -> None:
    app = create_app(settings.with_overrides(secure_cookies=True), services)
    make_user(TestClient(app, headers=bearer(admin_token)), "alice")
    r = TestClient(app).post("/api/v1/auth/login", json={"username": "alice", "password": PASSWORD})
    cookie = SimpleCookie()
    cookie.load(r.headers["set-cookie"])
    assert cookie["lockgate_session"]["secure"] is True


def test_changes_through_a_session_need_the_csrf_token(
    client: TestClient, app: FastAPI, services: Services
) -> None:
    make_project(client, "shop")
    make_user(client, "alice")
    client.put("/api/v1/projects/shop/members/alice", json={"role": "editor"})
    http, csrf = login(app, "alice")
    body = {"key": "checkout", "kind": "boolean"}
    assert http.get("/api/v1/projects/shop/flags").status_code == 200  # reads need no token
    r = http.post("/api/v1/projects/shop/flags", json=body)
    assert r.status_code == 403
    assert "X-CSRF-Token" in r.json()["detail"]
    r = http.post("/api/v1/projects/shop/flags", json=body, headers={"X-CSRF-Token": "forged"})
    assert r.status_code == 403
    r = http.post("/api/v1/projects/shop/flags", json=body, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201, r.text
    entry = audit_rows(services, "flag:created")[-1]
    assert (entry["actor_name"], entry["source"]) == ("alice", "dashboard")
    other, _ = login(app, "alice")  # another session's token does not fit
    r = other.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 403


def test_sessions_expire(client: TestClient, app: FastAPI, services: Services) -> None:
    make_user(client, "alice")
    http, answer = _login(app)
    assert http.get("/api/v1/auth/me").status_code == 200
    later = utc_now() + timedelta(hours=12, minutes=1)
    services.clock = lambda: later
    r = http.get("/api/v1/auth/me")
    assert r.status_code == 401
    assert "expired" in r.json()["detail"]
    assert str(answer["expires_at"]) < services.now()


def test_logout_revokes_the_session(client: TestClient, app: FastAPI, services: Services) -> None:
    make_user(client, "alice")
    http, csrf = login(app, "alice")
    stolen = http.cookies.get("lockgate_session")
    r = http.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 204
    assert (
        'lockgate_session=""' in r.headers["set-cookie"] or "Max-Age=0" in r.headers["set-cookie"]
    )
    replay = TestClient(app, cookies={"lockgate_session": str(stolen)})
    assert replay.get("/api/v1/auth/me").status_code == 401
    assert [e["actor_name"] for e in audit_rows(services, "auth:logout")] == ["alice"]
    with services.view() as conn:
        assert conn.execute(select(sessions.c.revoked_at)).scalar_one() is not None


def test_unknown_users_and_wrong_passwords_get_the_same_answer(
    client: TestClient, app: FastAPI, services: Services
) -> None:
    make_user(client, "alice")
    make_user(client, "bot", kind="service")
    answers = []
    for username, password in [
        ("alice", "not-the-password"),
        ("nobody", PASSWORD),
        ("bot", PASSWORD),
    ]:
        r = TestClient(app).post(
            "/api/v1/auth/login", json={"username": username, "password": password}
        )
        answers.append((r.status_code, r.json()["detail"], "set-cookie" in r.headers))
    assert answers == [(401, "invalid username or password", False)] * 3
    failed = audit_rows(services, "auth:login_failed")
    assert [(e["object_key"], e["actor_id"]) for e in failed] == [
        ("alice", "anonymous"),
        ("nobody", "anonymous"),
        ("bot", "anonymous"),
    ]
    assert all(e["evidence"]["client_address"] == "testclient" for e in failed)
    assert "not-the-password" not in str(failed)


def test_me_with_a_token_shows_its_scope(client: TestClient) -> None:
    make_project(client, "shop")
    token = client.post(
        "/api/v1/tokens", json={"name": "narrow", "project": "shop", "max_role": "viewer"}
    ).json()
    me = client.get("/api/v1/auth/me", headers=bearer(token["token"])).json()
    assert me["authenticated_by"] == "token"
    assert me["is_system_admin"] is False
    assert (me["token"]["project"], me["token"]["max_role"]) == ("shop", "viewer")
    assert client.get("/api/v1/auth/me").json()["is_system_admin"] is True


def test_a_bearer_token_wins_over_a_cookie_and_needs_no_csrf(
    client: TestClient, app: FastAPI, admin_token: str
) -> None:
    make_user(client, "alice")
    http, _ = login(app, "alice")
    r = http.post("/api/v1/projects", json={"key": "p1"}, headers=bearer(admin_token))
    assert r.status_code == 201
