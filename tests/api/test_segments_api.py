"""Segments through the real app, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from lockgate.control.base import Services
from lockgate.store.tables import audit_log, environment_changes
from tests.api.helpers import add_principal, bearer

SEGMENTS = "/api/v1/projects/shop/segments"
BETA_RULE = {
    "id": "corp",
    "clauses": [{"attribute": "email", "op": "ends_with", "values": ["@corp.example"]}],
}


def _setup(client: TestClient) -> None:
    assert client.post("/api/v1/projects", json={"key": "shop"}).status_code == 201
    for env in ("staging", "production"):
        r = client.post("/api/v1/projects/shop/environments", json={"key": env})
        assert r.status_code == 201, r.text


def _create(client: TestClient, key: str = "beta", **fields: Any) -> Any:
    return client.post(SEGMENTS, json={"key": key, **fields})


def _patch(client: TestClient, key: str, version: int, body: dict[str, Any]) -> Any:
    return client.patch(f"{SEGMENTS}/{key}", json=body, headers={"If-Match": f'"{version}"'})


def _use_in_flag(client: TestClient, segment: str) -> None:
    assert (
        client.post("/api/v1/projects/shop/flags", json={"key": "f", "kind": "boolean"}).status_code
        == 201
    )
    rule = {
        "id": "r",
        "clauses": [{"op": "segment_match", "values": [segment]}],
        "serve": {"variation": "on"},
    }
    r = client.patch(
        "/api/v1/projects/shop/flags/f/environments/production",
        json={"on": True, "rules": [rule]},
        headers={"If-Match": '"1"'},
    )
    assert r.status_code == 200, r.text


def test_segment_crud_round_trip(client: TestClient) -> None:
    _setup(client)
    r = _create(
        client,
        included=["u1", "u2"],
        excluded=["u9"],
        rules=[BETA_RULE],
        description="beta testers",
    )
    assert r.status_code == 201, r.text
    assert r.headers["ETag"] == '"1"'
    created = r.json()
    assert created | {"created_at": None, "updated_at": None} == {
        "key": "beta", "name": "beta", "description": "beta testers", "attribute": "key",
        "included": ["u1", "u2"], "excluded": ["u9"], "rules": [BETA_RULE], "version": 1,
        "created_at": None, "updated_at": None, "created_by": "admin",
    }  # fmt: skip
    assert client.get(f"{SEGMENTS}/beta").json() == created
    r = _patch(
        client, "beta", 1, {"attribute": "account", "included": ["acme"], "reason": "accounts"}
    )
    assert r.status_code == 200, r.text
    assert r.headers["ETag"] == '"2"'
    assert (r.json()["version"], r.json()["attribute"], r.json()["included"]) == (
        2,
        "account",
        ["acme"],
    )
    assert r.json()["excluded"] == ["u9"]
    r = client.delete(f"{SEGMENTS}/beta", headers={"If-Match": '"2"', "X-Lockgate-Reason": "done"})
    assert r.status_code == 204
    assert client.get(f"{SEGMENTS}/beta").status_code == 404


def test_list_filters_by_text_and_pages(client: TestClient) -> None:
    _setup(client)
    for key, name in (("alpha", "Alpha testers"), ("beta", "Beta testers"), ("staff", "Employees")):
        assert _create(client, key, name=name).status_code == 201
    page = client.get(SEGMENTS, params={"q": "TESTERS", "limit": 1}).json()
    assert ([s["key"] for s in page["items"]], page["total"]) == (["alpha"], 2)
    page = client.get(SEGMENTS, params={"q": "testers", "cursor": page["next_cursor"]}).json()
    assert ([s["key"] for s in page["items"]], page["next_cursor"]) == (["beta"], None)
    assert client.get(SEGMENTS, params={"q": "%"}).json()["total"] == 0


def test_invalid_segments_are_refused_naming_the_field(client: TestClient) -> None:
    _setup(client)
    bad_op = {"id": "r", "clauses": [{"attribute": "email", "op": "endz", "values": ["x"]}]}
    r = _create(client, rules=[bad_op])
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["rules[0].clauses[0].op"]
    unknown = {"id": "r", "clauses": [{"op": "segment_match", "values": ["nope"]}]}
    r = _create(client, rules=[unknown])
    assert [e["field"] for e in r.json()["errors"]] == ["rules[0].clauses[0].values[0]"]
    r = _create(client, "-bad")
    assert [e["field"] for e in r.json()["errors"]] == ["key"]
    r = _create(client, included=[f"u{i}" for i in range(10_001)])
    assert [e["field"] for e in r.json()["errors"]] == ["included"]
    r = client.post(SEGMENTS, json={"key": "s", "version": 3})
    assert r.json()["errors"] == [{"field": "version", "message": "unknown or read-only field"}]
    assert client.get(SEGMENTS).json()["total"] == 0


def test_a_segment_cycle_is_refused(client: TestClient) -> None:
    _setup(client)
    assert _create(client, "inner").status_code == 201
    outer = {"id": "nest", "clauses": [{"op": "segment_match", "values": ["inner"]}]}
    assert _create(client, "outer", rules=[outer]).status_code == 201
    back = {"id": "back", "clauses": [{"op": "segment_match", "values": ["outer"]}]}
    r = _patch(client, "inner", 1, {"rules": [back]})
    assert r.status_code == 422
    assert "rules[0].clauses[0].values[0]" in [e["field"] for e in r.json()["errors"]]


def test_segments_are_validated_without_environments(client: TestClient) -> None:
    assert client.post("/api/v1/projects", json={"key": "shop"}).status_code == 201
    bad = {"id": "r", "clauses": [{"attribute": "n", "op": "matches", "values": ["(a+)+$"]}]}
    r = _create(client, rules=[bad])
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["rules[0].clauses[0].values[0]"]


def test_stale_write_is_409_and_missing_if_match_428(client: TestClient) -> None:
    _setup(client)
    assert _create(client).status_code == 201
    assert _patch(client, "beta", 1, {"included": ["u1"]}).status_code == 200
    r = _patch(client, "beta", 1, {"included": ["u2"]})
    assert r.status_code == 409
    assert r.json()["current_version"] == 2
    assert client.get(f"{SEGMENTS}/beta").json()["included"] == ["u1"]
    assert client.patch(f"{SEGMENTS}/beta", json={"included": []}).status_code == 428
    assert client.delete(f"{SEGMENTS}/beta", headers={"If-Match": '"1"'}).status_code == 409
    assert client.delete(f"{SEGMENTS}/beta").status_code == 428


def test_delete_is_refused_while_a_flag_or_segment_uses_it(client: TestClient) -> None:
    _setup(client)
    assert _create(client).status_code == 201
    _use_in_flag(client, "beta")
    r = client.delete(f"{SEGMENTS}/beta", headers={"If-Match": '"1"'})
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["flags.f.rules[0].clauses[0].values[0]"]
    nested = {"id": "n", "clauses": [{"op": "segment_match", "values": ["beta"]}]}
    assert _create(client, "outer", rules=[nested]).status_code == 201
    r = client.delete(f"{SEGMENTS}/beta", headers={"If-Match": '"1"'})
    assert sorted(e["field"] for e in r.json()["errors"]) == [
        "flags.f.rules[0].clauses[0].values[0]",
        "segments.outer.rules[0].clauses[0].values[0]",
    ]
    assert client.get(f"{SEGMENTS}/beta").status_code == 200
    assert client.delete(f"{SEGMENTS}/outer", headers={"If-Match": '"1"'}).status_code == 204


def test_changes_are_audited_and_bump_every_environment(
    client: TestClient, services: Services
) -> None:
    _setup(client)
    assert _create(client, rules=[BETA_RULE], reason="new audience").status_code == 201
    assert _patch(client, "beta", 1, {"included": ["u1"], "reason": "add u1"}).status_code == 200
    assert _patch(client, "beta", 2, {"included": ["u1"]}).json()["version"] == 2  # no change
    r = client.delete(
        f"{SEGMENTS}/beta", headers={"If-Match": '"2"', "X-Lockgate-Reason": "retired"}
    )
    assert r.status_code == 204
    with services.view() as conn:
        entries = conn.execute(
            select(audit_log).where(audit_log.c.object_type == "segment").order_by(audit_log.c.seq)
        ).all()
        changes = conn.execute(select(environment_changes.c.segments)).all()
    assert [(e.action, e.reason, e.project) for e in entries] == [
        ("segment:created", "new audience", "shop"),
        ("segment:updated", "add u1", "shop"),
        ("segment:deleted", "retired", "shop"),
    ]
    assert {"path": "included", "old": [], "new": ["u1"]} in entries[1].changes
    assert entries[2].after is None
    assert entries[2].before["key"] == "beta"
    assert [row.segments for row in changes].count(["beta"]) == 6  # 3 changes x 2 environments


def test_viewers_read_editors_write_outsiders_see_nothing(
    client: TestClient, services: Services, app: FastAPI
) -> None:
    _setup(client)
    assert _create(client).status_code == 201
    assert client.post("/api/v1/projects", json={"key": "other"}).status_code == 201
    viewer = add_principal(services, "vera", [("shop", "viewer")])
    editor = add_principal(services, "ed", [("shop", "editor")])
    outsider = add_principal(services, "otto", [("other", "admin")])
    assert client.get(f"{SEGMENTS}/beta", headers=bearer(viewer)).status_code == 200
    assert client.post(SEGMENTS, json={"key": "x"}, headers=bearer(viewer)).status_code == 403
    assert client.post(SEGMENTS, json={"key": "x"}, headers=bearer(editor)).status_code == 201
    assert client.get(SEGMENTS, headers=bearer(outsider)).status_code == 404
    r = client.delete(f"{SEGMENTS}/beta", headers={"If-Match": '"1"', **bearer(outsider)})
    assert r.status_code == 404
