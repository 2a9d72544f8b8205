"""Server-side evaluation and the environment snapshot through the real app."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from lockgate.control.base import Services
from lockgate.control.configuration.evaluation import SnapshotCache
from lockgate.engine import Snapshot, compile_snapshot
from tests.api.helpers import add_principal, bearer

ENV = "/api/v1/projects/shop/environments/production"
CORP = {"attribute": "email", "op": "ends_with", "values": ["@corp.example"]}


def _setup(client: TestClient) -> None:
    assert client.post("/api/v1/projects", json={"key": "shop"}).status_code == 201
    assert (
        client.post("/api/v1/projects/shop/environments", json={"key": "production"}).status_code
        == 201
    )
    assert (
        client.post(
            "/api/v1/projects/shop/flags", json={"key": "agent", "kind": "mode"}
        ).status_code
        == 201
    )
    rule = {"id": "corp", "clauses": [CORP], "serve": {"variation": "full"}}
    r = client.patch(
        "/api/v1/projects/shop/flags/agent/environments/production",
        json={"on": True, "rules": [rule], "default": {"variation": "observe"}},
        headers={"If-Match": '"1"'},
    )
    assert r.status_code == 200, r.text


def _evaluate(client: TestClient, **body: Any) -> Any:
    r = client.post(f"{ENV}/evaluate", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def test_evaluates_with_the_engine(client: TestClient) -> None:
    _setup(client)
    assert _evaluate(client, flag="agent", context={"key": "u1", "email": "a@corp.example"}) == {
        "value": "full", "variation": "full", "reason": "RULE_MATCH", "rule_id": "corp",
        "error_code": None, "flag_version": 2,
    }  # fmt: skip
    result = _evaluate(client, flag="agent", context={"key": "u2"}, type="mode")
    assert (result["value"], result["reason"]) == ("observe", "FALLTHROUGH")
    result = _evaluate(client, flag="agent", context={"key": "u2"}, default=False, type="boolean")
    assert (result["value"], result["error_code"]) == (False, "TYPE_MISMATCH")


def test_unknown_flag_is_a_result_not_an_error(client: TestClient) -> None:
    _setup(client)
    assert _evaluate(client, flag="nope", context={}, default={"x": 1}) == {
        "value": {"x": 1}, "variation": None, "reason": "ERROR", "rule_id": None,
        "error_code": "FLAG_NOT_FOUND", "flag_version": None,
    }  # fmt: skip


@pytest.mark.parametrize("context", ["u1", ["u1"], None, 3])
def test_a_context_that_is_not_an_object_is_422(client: TestClient, context: Any) -> None:
    _setup(client)
    r = client.post(f"{ENV}/evaluate", json={"flag": "agent", "context": context})
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["context"]


def test_bad_requests_name_the_field(client: TestClient) -> None:
    _setup(client)
    r = client.post(f"{ENV}/evaluate", json={"flag": "agent"})
    assert [e["field"] for e in r.json()["errors"]] == ["context"]
    r = client.post(f"{ENV}/evaluate", json={"flag": "agent", "context": {}, "type": "int"})
    assert [e["field"] for e in r.json()["errors"]] == ["type"]
    r = client.post(
        "/api/v1/projects/shop/environments/nope/evaluate", json={"flag": "a", "context": {}}
    )
    assert r.status_code == 404


def test_every_change_is_seen_by_the_next_evaluation(client: TestClient) -> None:
    _setup(client)
    context = {"key": "u1"}
    assert _evaluate(client, flag="agent", context=context)["value"] == "observe"
    assert (
        client.post(
            "/api/v1/projects/shop/segments", json={"key": "beta", "included": ["u1"]}
        ).status_code
        == 201
    )
    rule = {
        "id": "beta",
        "clauses": [{"op": "segment_match", "values": ["beta"]}],
        "serve": {"variation": "draft_only"},
    }
    r = client.patch(
        "/api/v1/projects/shop/flags/agent/environments/production",
        json={"rules": [rule]},
        headers={"If-Match": '"2"'},
    )
    assert r.status_code == 200, r.text
    assert _evaluate(client, flag="agent", context=context)["value"] == "draft_only"
    r = client.patch(
        "/api/v1/projects/shop/segments/beta", json={"included": []}, headers={"If-Match": '"1"'}
    )
    assert r.status_code == 200
    assert _evaluate(client, flag="agent", context=context)["value"] == "observe"


def test_snapshot_is_the_environment_document(client: TestClient) -> None:
    _setup(client)
    r = client.get(f"{ENV}/snapshot")
    assert r.status_code == 200
    document = r.json()
    assert (document["format"], document["project"], document["environment"]) == (
        "lockgate.snapshot/1", "shop", "production",
    )  # fmt: skip
    assert r.headers["ETag"] == f'"{document["version"]}"'
    assert document["flags"]["agent"]["rules"][0]["id"] == "corp"
    assert document["segments"] == {}


def test_only_callers_who_see_the_environment_evaluate(
    client: TestClient, services: Services, app: FastAPI
) -> None:
    _setup(client)
    assert client.post("/api/v1/projects", json={"key": "other"}).status_code == 201
    viewer = add_principal(services, "vera", [("shop", "viewer")])
    outsider = add_principal(services, "otto", [("other", "admin")])
    body = {"flag": "agent", "context": {"key": "u1"}}
    assert client.post(f"{ENV}/evaluate", json=body, headers=bearer(viewer)).status_code == 200
    assert client.get(f"{ENV}/snapshot", headers=bearer(viewer)).status_code == 200
    r = client.post(f"{ENV}/evaluate", json=body, headers=bearer(outsider))
    assert (r.status_code, r.json()["detail"]) == (404, "project 'shop' not found")
    r = client.post(
        "/api/v1/projects/shop/environments/nope/evaluate", json=body, headers=bearer(outsider)
    )
    assert (r.status_code, r.json()["detail"]) == (404, "project 'shop' not found")
    assert client.get(f"{ENV}/snapshot", headers=bearer(outsider)).status_code == 404
    assert TestClient(app).post(f"{ENV}/evaluate", json=body).status_code == 401


def test_snapshot_cache_keeps_the_newest_version_per_services_and_is_bounded() -> None:
    cache = SnapshotCache(size=2)
    one, two = Services(database=None), Services(database=None)  # type: ignore[arg-type]
    compiled = compile_snapshot(Snapshot.empty())
    cache.put(one, 1, 5, compiled)
    assert cache.get(one, 1, 5) is compiled
    assert cache.get(two, 1, 5) is None  # another database with the same ids
    assert cache.get(one, 1, 6) is None
    cache.put(one, 1, 4, compile_snapshot(Snapshot.empty()))  # older: ignored
    assert cache.get(one, 1, 5) is compiled
    cache.put(two, 1, 5, compiled)
    cache.put(two, 2, 1, compiled)
    assert cache.get(one, 1, 5) is None  # evicted, least recently used


def test_a_context_over_its_limits_is_413_naming_the_field(client: TestClient) -> None:
    _setup(client)
    context = {"key": "u1", "email": "a@corp.example", "groups": ["g"] * 101}
    r = client.post(f"{ENV}/evaluate", json={"flag": "agent", "context": context})
    assert r.status_code == 413
    assert r.json()["errors"] == [
        {"field": "context.groups", "message": "has 101 elements; at most 100 are allowed"}
    ]
