"""Helpers for the identity tests: users, grants, sessions and tokens made through the API."""

from __future__ import annotations

import json
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from lockgate.control.base import Services
from lockgate.control.identity import passwords
from lockgate.store.tables import audit_log

__all__ = [
    "PASSWORD",
    "audit_rows",
    "bearer",
    "grant",
    "login",
    "make_project",
    "make_user",
    "session_token",
    "use_cheap_hashing",
]

PASSWORD = "correct-horse-battery"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def make_project(
    admin: TestClient, key: str, envs: tuple[str, ...] = ("staging", "production")
) -> None:
    assert admin.post("/api/v1/projects", json={"key": key}).status_code == 201
    for env in envs:
        body = {"key": env, "protected": env == "production"}
        r = admin.post(f"/api/v1/projects/{key}/environments", json=body)
        assert r.status_code == 201, r.text


def make_user(
    admin: TestClient,
    username: str,
    *,
    password: str | None = PASSWORD,
    kind: str = "human",
    is_admin: bool = False,
) -> dict[str, Any]:
    body: dict[str, Any] = {"username": username, "kind": kind, "is_admin": is_admin}
    if kind == "human":
        body["password"] = password
    r = admin.post("/api/v1/users", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def grant(
    admin: TestClient, project: str, username: str, role: str, environment: str | None = None
) -> None:
    r = admin.put(
        f"/api/v1/projects/{project}/members/{username}",
        json={"role": role, "environment": environment},
    )
    assert r.status_code == 200, r.text


def login(app: FastAPI, username: str, password: str = PASSWORD) -> tuple[TestClient, str]:
    """A client holding a session cookie for ``username``, and the session's CSRF token."""
    http = TestClient(app)
    r = http.post("/api/v1/auth/login", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return http, str(r.json()["csrf_token"])


def session_token(app: FastAPI, username: str, password: str = PASSWORD, **body: Any) -> str:
    """An API token for ``username``, created by them through a dashboard session."""
    http, csrf = login(app, username, password)
    r = http.post("/api/v1/tokens", json={"name": "test", **body}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


def audit_rows(services: Services, action: str | None = None) -> list[dict[str, Any]]:
    query = select(audit_log).order_by(audit_log.c.seq)
    if action is not None:
        query = query.where(audit_log.c.action == action)
    with services.view() as conn:
        return [dict(r._mapping) for r in conn.execute(query).all()]


def audit_text(services: Services) -> str:
    """Every audit entry as one JSON text, to search for leaked secrets."""
    return json.dumps(audit_rows(services), default=str)


def use_cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2 with minimal cost, for tests that log in often (the format stays Argon2id)."""
    monkeypatch.setattr(
        passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )
