"""SDK keys: two active per environment and kind (rotation), shown once, revocable."""

from __future__ import annotations

import json

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from lockgate.control.base import Services
from lockgate.control.identity.credentials import hash_secret
from lockgate.control.identity.sdk_keys import authenticate_sdk_key
from lockgate.errors import Unauthenticated
from lockgate.store.tables import environments, sdk_keys
from tests.api.identity_helpers import (
    audit_rows,
    audit_text,
    bearer,
    grant,
    make_project,
    make_user,
    session_token,
    use_cheap_hashing,
)

KEYS = "/api/v1/projects/shop/environments/{env}/sdk-keys"


@pytest.fixture(autouse=True)
def _cheap_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    use_cheap_hashing(monkeypatch)


def _create(client: TestClient, kind: str = "server", env: str = "staging") -> dict[str, str]:
    r = client.post(KEYS.format(env=env), json={"kind": kind, "name": f"{kind} key"})
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_two_keys_per_kind_allow_rotation_and_a_third_is_refused(
    client: TestClient, services: Services
) -> None:
    make_project(client, "shop")
    old, new = _create(client), _create(client)
    r = client.post(KEYS.format(env="staging"), json={"kind": "server", "name": "third"})
    assert r.status_code == 409
    assert "revoke one" in r.json()["detail"]
    _create(client, "client")  # client keys are counted separately
    _create(client, "server", env="production")  # and per environment
    r = client.delete(
        KEYS.format(env="staging") + f"/{old['prefix']}", headers={"X-Lockgate-Reason": "rotated"}
    )
    assert r.status_code == 200
    assert r.json()["revoked"] is True
    third = _create(client)
    listed = client.get(KEYS.format(env="staging")).json()["items"]
    assert [(k["prefix"], k["revoked"]) for k in listed if k["kind"] == "server"] == [
        (old["prefix"], True),
        (new["prefix"], False),
        (third["prefix"], False),
    ]
    actions = [e["action"] for e in audit_rows(services) if e["object_type"] == "sdk_key"]
    assert actions == ["sdk_key:created"] * 4 + ["sdk_key:revoked", "sdk_key:created"]


def test_key_values_are_shown_once_and_hashed_at_rest(
    client: TestClient, services: Services
) -> None:
    make_project(client, "shop")
    server, browser = _create(client), _create(client, "client")
    assert server["key"].startswith(f"lgs_{server['prefix']}_")
    assert browser["key"].startswith(f"lgc_{browser['prefix']}_")
    with services.view() as conn:
        stored = json.dumps([list(r) for r in conn.execute(select(sdk_keys)).all()], default=str)
    for value in (server["key"], browser["key"]):
        assert value not in stored
        assert hash_secret(value) in stored
        assert value not in audit_text(services)
    listed = client.get(KEYS.format(env="staging")).json()["items"]
    assert all("key" not in k for k in listed)


def test_authenticate_sdk_key_for_the_delivery_endpoints(
    client: TestClient, services: Services
) -> None:
    make_project(client, "shop")
    server = _create(client)
    now = services.now()
    with services.view() as conn:
        principal = authenticate_sdk_key(conn, server["key"], now)
        env = conn.execute(select(environments).where(environments.c.key == "staging")).one()
        assert (principal.environment_id, principal.project_id, principal.kind) == (
            env.id,
            env.project_id,
            "server",
        )
        forged = server["key"][:-4] + "AAAA"
        admin_token = str(client.headers["Authorization"]).split(" ")[1]
        for bad in (forged, admin_token, "nonsense", "lgc_" + server["key"][4:]):
            with pytest.raises(Unauthenticated):
                authenticate_sdk_key(conn, bad, now)
    client.delete(KEYS.format(env="staging") + f"/{server['prefix']}")
    with services.view() as conn, pytest.raises(Unauthenticated, match="revoked"):
        authenticate_sdk_key(conn, server["key"], now)


def test_managing_keys_needs_the_environment_admin_role(client: TestClient, app: FastAPI) -> None:
    make_project(client, "shop")
    make_user(client, "ed")
    make_user(client, "sam")
    grant(client, "shop", "ed", "editor")
    grant(client, "shop", "sam", "admin", "staging")
    ed = TestClient(app, headers=bearer(session_token(app, "ed")))
    sam = TestClient(app, headers=bearer(session_token(app, "sam")))
    assert ed.get(KEYS.format(env="staging")).status_code == 403
    assert ed.post(KEYS.format(env="staging"), json={"kind": "server"}).status_code == 403
    created = sam.post(KEYS.format(env="staging"), json={"kind": "server"})
    assert created.status_code == 201
    assert created.json()["name"] == "server key"
    assert sam.post(KEYS.format(env="production"), json={"kind": "server"}).status_code == 403
    assert (
        sam.delete(KEYS.format(env="staging") + f"/{created.json()['prefix']}").status_code == 200
    )
    assert client.delete(KEYS.format(env="staging") + "/nope").status_code == 404
    r = client.post(KEYS.format(env="staging"), json={"kind": "mobile"})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "kind"
