"""Projects, environments and flags through the real app, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient


def _setup(client: TestClient) -> None:
    assert client.post("/api/v1/projects", json={"key": "shop", "name": "Shop"}).status_code == 201
    r = client.post(
        "/api/v1/projects/shop/environments", json={"key": "production", "protected": True}
    )
    assert r.status_code == 201
    r = client.post("/api/v1/projects/shop/flags", json={"key": "agent", "kind": "mode"})
    assert r.status_code == 201, r.text


def _patch_config(client: TestClient, version: int, body: dict[str, Any]) -> Any:
    return client.patch(
        "/api/v1/projects/shop/flags/agent/environments/production",
        json=body,
        headers={"If-Match": f'"{version}"'},
    )


def test_flag_configuration_round_trip_with_history_and_revert(client: TestClient) -> None:
    _setup(client)
    rule = {
        "id": "corp",
        "clauses": [{"attribute": "email", "op": "ends_with", "values": ["@corp.example"]}],
        "serve": {"variation": "full"},
    }
    r = _patch_config(client, 1, {"on": True, "rules": [rule], "reason": "internal first"})
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2
    assert r.headers["ETag"] == '"2"'
    r = _patch_config(client, 2, {"on": False, "reason": "pause"})
    assert r.json()["on"] is False
    history = client.get(
        "/api/v1/projects/shop/flags/agent/environments/production/versions"
    ).json()
    assert [item["version"] for item in history["items"]] == [3, 2, 1]
    r = client.post(
        "/api/v1/projects/shop/flags/agent/environments/production/revert",
        json={"to_version": 2, "reason": "resume"},
        headers={"If-Match": '"3"'},
    )
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 4
    assert r.json()["on"] is True
    assert r.json()["rules"] == [rule]


def test_stale_write_is_refused_with_409_and_nothing_changes(client: TestClient) -> None:
    _setup(client)
    assert _patch_config(client, 1, {"on": True, "reason": "go"}).status_code == 200
    r = _patch_config(client, 1, {"on": False, "reason": "stale view"})
    assert r.status_code == 409
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["current_version"] == 2
    config = client.get("/api/v1/projects/shop/flags/agent/environments/production").json()
    assert config["on"] is True


def test_invalid_configuration_names_the_field(client: TestClient) -> None:
    _setup(client)
    bad = {
        "id": "r",
        "clauses": [{"attribute": "email", "op": "endz", "values": ["x"]}],
        "serve": {"variation": "full"},
    }
    r = _patch_config(client, 1, {"rules": [bad], "reason": "typo"})
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["rules[0].clauses[0].op"]


def test_read_only_fields_are_refused(client: TestClient) -> None:
    _setup(client)
    r = client.post(
        "/api/v1/projects/shop/flags", json={"key": "f2", "kind": "boolean", "version": 9}
    )
    assert r.status_code == 422
    assert r.json()["errors"] == [{"field": "version", "message": "unknown or read-only field"}]


def test_reason_is_required_in_protected_environments(client: TestClient) -> None:
    _setup(client)
    r = _patch_config(client, 1, {"on": True})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "reason"


def test_missing_if_match_is_428(client: TestClient) -> None:
    _setup(client)
    r = client.patch(
        "/api/v1/projects/shop/flags/agent/environments/production",
        json={"on": True, "reason": "x"},
    )
    assert r.status_code == 428


def test_body_over_the_limit_is_413(client: TestClient) -> None:
    r = client.post(
        "/api/v1/projects",
        content=b'{"key": "' + b"a" * 2_000_000 + b'"}',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 413
    assert r.json()["code"] == "payload_too_large"


def test_deep_nesting_is_413(client: TestClient) -> None:
    body = '{"key": "p", "name": ' + "[" * 100 + "]" * 100 + "}"
    r = client.post(
        "/api/v1/projects", content=body.encode(), headers={"content-type": "application/json"}
    )
    assert r.status_code == 413


def test_every_change_is_audited_in_the_same_transaction(client: TestClient) -> None:
    from lockgate.store.tables import audit_log

    _setup(client)
    services = client.app.state.services  # type: ignore[attr-defined]
    with services.view() as conn:
        actions = [row.action for row in conn.execute(audit_log.select().order_by(audit_log.c.seq))]
    assert actions == ["user:created", "project:created", "environment:created", "flag:created"]
