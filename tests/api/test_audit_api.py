"""The audit log API: filters, paging and who sees which entries."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from lockgate.control.base import Services
from tests.api.helpers import add_principal, bearer

AUDIT = "/api/v1/audit"


def _setup(client: TestClient) -> None:
    """Two projects with an environment and a flag each; ``a/f`` is configured once."""
    for project in ("a", "b"):
        assert client.post("/api/v1/projects", json={"key": project}).status_code == 201
        r = client.post(f"/api/v1/projects/{project}/environments", json={"key": "prod"})
        assert r.status_code == 201
        r = client.post(f"/api/v1/projects/{project}/flags", json={"key": "f", "kind": "boolean"})
        assert r.status_code == 201
    r = client.patch(
        "/api/v1/projects/a/flags/f/environments/prod",
        json={"on": True, "reason": "launch"},
        headers={"If-Match": '"1"'},
    )
    assert r.status_code == 200, r.text


def _actions(client: TestClient, **params: Any) -> list[str]:
    r = client.get(AUDIT, params=params)
    assert r.status_code == 200, r.text
    return [e["action"] for e in r.json()["items"]]


def test_entries_have_every_field_newest_first(client: TestClient) -> None:
    _setup(client)
    items = client.get(AUDIT).json()["items"]
    assert [e["seq"] for e in items] == sorted((e["seq"] for e in items), reverse=True)
    assert set(items[0]) == {
        "seq", "id", "ts", "action", "actor_type", "actor_id", "actor_name", "source",
        "request_id", "project", "environment", "object_type", "object_key", "before", "after",
        "changes", "reason", "risk_tier", "evidence", "refs", "prev_hash", "hash",
    }  # fmt: skip
    newest = items[0]
    assert (newest["action"], newest["project"], newest["environment"]) == (
        "flag:configured",
        "a",
        "prod",
    )
    assert (newest["actor_name"], newest["actor_type"], newest["reason"]) == (
        "admin",
        "token",
        "launch",
    )
    assert newest["prev_hash"] == items[1]["hash"]
    assert _actions(client, order="asc")[0] == "user:created"


def test_filters(client: TestClient) -> None:
    _setup(client)
    assert _actions(client, project="b") == [
        "flag:created",
        "environment:created",
        "project:created",
    ]
    assert _actions(client, environment="prod", project="a") == [
        "flag:configured",
        "environment:created",
    ]
    assert _actions(client, behavior="f", project="a") == ["flag:configured", "flag:created"]
    assert _actions(client, object_type="project", order="asc") == ["project:created"] * 2
    assert _actions(client, object_key="b") == ["project:created"]
    assert len(_actions(client, action="flag:")) == 3
    assert _actions(client, action="flag:configured") == ["flag:configured"]
    assert _actions(client, action="flag") == []
    assert _actions(client, action="%:") == []
    assert len(_actions(client, actor="admin")) == 7
    assert len(_actions(client, actor="bootstrap")) == 1  # the system actor that created admin
    items = client.get(AUDIT, params={"order": "asc"}).json()["items"]
    assert _actions(client, after_seq=items[-2]["seq"]) == ["flag:configured"]
    assert _actions(client, since=items[-1]["ts"]) == ["flag:configured"]
    assert "flag:configured" not in _actions(client, until=items[-1]["ts"])
    assert _actions(client, since="2999-01-01") == []
    assert _actions(client, until="2000-01-01T00:00:00+02:00") == []


def test_pages_with_a_cursor_in_either_order(client: TestClient) -> None:
    _setup(client)
    everything = [e["seq"] for e in client.get(AUDIT, params={"order": "asc"}).json()["items"]]
    for order in ("asc", "desc"):
        seen: list[int] = []
        params: dict[str, Any] = {"order": order, "limit": 3}
        while True:
            page = client.get(AUDIT, params=params).json()
            seen += [e["seq"] for e in page["items"]]
            if page["next_cursor"] is None:
                break
            params["cursor"] = page["next_cursor"]
        assert seen == (everything if order == "asc" else everything[::-1])


def test_bad_parameters_name_the_field(client: TestClient) -> None:
    _setup(client)
    for params, field in (
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-13-01"}, "until"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"limit": 501}, "limit"),
        ({"order": "sideways"}, "order"),
        ({"after_seq": -1}, "after_seq"),
    ):
        r = client.get(AUDIT, params=params)
        assert r.status_code == 422, params
        assert [e["field"] for e in r.json()["errors"]] == [field]
    desc_cursor = client.get(AUDIT, params={"limit": 1}).json()["next_cursor"]
    r = client.get(AUDIT, params={"cursor": desc_cursor, "order": "asc"})
    assert [e["field"] for e in r.json()["errors"]] == ["cursor"]


def test_a_viewer_of_one_project_never_sees_another(
    client: TestClient, services: Services, app: FastAPI
) -> None:
    _setup(client)
    viewer = add_principal(services, "vera", [("a", "viewer")])
    env_only = add_principal(services, "eve", [("a", "editor", "prod")])
    narrowed_admin = add_principal(services, "root2", is_admin=True, token_project="a")
    for token in (viewer, env_only, narrowed_admin):
        r = client.get(AUDIT, params={"limit": 500}, headers=bearer(token))
        assert r.status_code == 200
        assert {e["project"] for e in r.json()["items"]} == {"a"}
        assert len(r.json()["items"]) == 4
        r = client.get(AUDIT, params={"project": "b"}, headers=bearer(token))
        assert r.status_code == 404
        r = client.get(AUDIT, params={"object_type": "user"}, headers=bearer(token))
        assert r.json()["items"] == []
    nobody = add_principal(services, "nobody")
    assert client.get(AUDIT, headers=bearer(nobody)).json() == {"items": [], "next_cursor": None}
    assert TestClient(app).get(AUDIT).status_code == 401
    everything = client.get(AUDIT, params={"limit": 500}).json()["items"]
    assert {e["project"] for e in everything} == {None, "a", "b"}


def test_an_unknown_project_is_404_for_a_system_administrator(client: TestClient) -> None:
    answer = client.get("/api/v1/audit", params={"project": "nope"})
    assert answer.status_code == 404
    assert answer.json()["detail"] == "project 'nope' not found"
