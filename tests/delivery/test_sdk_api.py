"""The SDK endpoints in process: snapshot, evaluate, events, keys (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from lockgate.api.routes.sdk import MAX_COUNT_ROWS
from lockgate.control.base import Services
from lockgate.store.tables import evaluation_counts
from tests.api.helpers import bearer
from tests.delivery.servers import Admin

P, ENV = "shop", "production"
CORP = {"attribute": "email", "op": "ends_with", "values": ["@corp.example"]}


@pytest.fixture
def admin(client: TestClient) -> Admin:
    admin = Admin(client)
    admin.project(P, ENV, "staging")
    admin.flag(P, "public", client_visible=True)
    admin.flag(P, "internal")
    rule = {"id": "corp", "clauses": [CORP], "serve": {"variation": "on"}}
    targets = [{"variation": "on", "values": ["vip-1"]}]
    for flag in ("public", "internal"):
        admin.configure(P, flag, ENV, on=True, rules=[rule], targets=targets)
    return admin


@pytest.fixture
def server_key(admin: Admin) -> str:
    return admin.sdk_key(P, ENV, "server")[0]


@pytest.fixture
def client_key(admin: Admin) -> str:
    return admin.sdk_key(P, ENV, "client")[0]


def _keys_anywhere(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _keys_anywhere(item)
    elif isinstance(value, list):
        for item in value:
            yield from _keys_anywhere(item)


# -- snapshot ---------------------------------------------------------------------------


def test_snapshot_has_an_etag_and_answers_304_to_a_current_one(
    client: TestClient, admin: Admin, server_key: str
) -> None:
    version = admin.stored_version(P, ENV)
    document = admin.snapshot(server_key, at_least=version)
    r = client.get("/sdk/v1/snapshot", headers=bearer(server_key))
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.headers["etag"] == f'"{version}"'
    assert r.json() == document
    assert (document["version"], document["environment"]) == (version, ENV)
    assert set(document["flags"]) == {"public", "internal"}
    for if_none_match in (f'"{version}"', "*", f'"1", "{version}"', f'W/"{version}"'):
        r = client.get(
            "/sdk/v1/snapshot", headers={**bearer(server_key), "If-None-Match": if_none_match}
        )
        assert r.status_code == 304, if_none_match
        assert r.content == b""
        assert r.headers["etag"] == f'"{version}"'
    for stale in (f'"{version - 1}"', f"{version}", '"nope"', ""):
        r = client.get("/sdk/v1/snapshot", headers={**bearer(server_key), "If-None-Match": stale})
        assert r.status_code == 200, stale
        assert r.json()["version"] == version


def test_the_snapshot_follows_changes(client: TestClient, admin: Admin, server_key: str) -> None:
    before = admin.current(server_key, P, ENV)
    admin.configure(P, "internal", ENV, on=False)
    after = admin.snapshot(server_key, at_least=before["version"] + 1)
    assert after["version"] == before["version"] + 1
    assert after["flags"]["internal"]["on"] is False
    r = client.get(
        "/sdk/v1/snapshot",
        headers={**bearer(server_key), "If-None-Match": f'"{before["version"]}"'},
    )
    assert r.status_code == 200


# -- who may use what -------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite"])
def test_client_keys_get_403_on_ruleset_endpoints(client: TestClient, client_key: str) -> None:
    for path in ("/sdk/v1/snapshot", "/sdk/v1/stream"):
        r = client.get(path, headers=bearer(client_key))
        assert r.status_code == 403, path
        assert r.json()["code"] == "permission_denied"


def test_client_keys_evaluate_only_client_visible_flags_and_never_see_rules(
    client: TestClient, client_key: str, server_key: str
) -> None:
    context = {"context": {"key": "u1", "email": "a@corp.example"}}
    r = client.post("/sdk/v1/evaluate", json=context, headers=bearer(client_key))
    assert r.status_code == 200, r.text
    body = r.json()
    assert list(body["flags"]) == ["public"]
    assert body["flags"]["public"] == {
        "value": True, "variation": "on", "reason": "RULE_MATCH", "rule_id": "corp",
        "error_code": None,
    }  # fmt: skip
    assert not {"rules", "clauses", "targets", "segments"} & set(_keys_anywhere(body))
    assert "@corp.example" not in r.text
    r = client.post(
        "/sdk/v1/evaluate", json={"context": {"key": "vip-1"}}, headers=bearer(client_key)
    )
    assert r.json()["flags"]["public"]["reason"] == "TARGET_MATCH"
    # A server key evaluates every flag of its environment.
    r = client.post("/sdk/v1/evaluate", json=context, headers=bearer(server_key))
    assert sorted(r.json()["flags"]) == ["internal", "public"]


@pytest.mark.parametrize("backend", ["sqlite"])
def test_evaluate_refuses_a_context_that_is_not_an_object(
    client: TestClient, client_key: str
) -> None:
    for context in ("u1", ["u1"], None, 3):
        body = {"context": context}
        r = client.post("/sdk/v1/evaluate", json=body, headers=bearer(client_key))
        assert r.status_code == 422
        assert [e["field"] for e in r.json()["errors"]] == ["context"]


@pytest.mark.parametrize("backend", ["sqlite"])
def test_management_tokens_are_refused_by_sdk_endpoints(
    client: TestClient, admin_token: str
) -> None:
    for method, path in [
        ("GET", "/sdk/v1/snapshot"),
        ("GET", "/sdk/v1/stream"),
        ("POST", "/sdk/v1/evaluate"),
        ("POST", "/sdk/v1/events"),
    ]:
        r = client.request(method, path, json={}, headers=bearer(admin_token))
        assert r.status_code == 401, path
        assert r.json()["code"] == "unauthenticated"
        assert r.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("backend", ["sqlite"])
def test_sdk_keys_are_refused_by_the_management_api(
    client: TestClient, server_key: str, client_key: str
) -> None:
    for key in (server_key, client_key):
        for path in ("/api/v1/projects", f"/api/v1/projects/{P}/environments/{ENV}"):
            r = client.get(path, headers=bearer(key))
            assert r.status_code == 401, (key[:4], path)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_missing_or_unknown_keys_get_401(client: TestClient, server_key: str) -> None:
    client.headers.pop("Authorization")
    for headers in (
        {},
        {"Authorization": "Bearer lgs_unknown_0123456789abcdef"},
        {"Authorization": f"Bearer {server_key}x"},
        {"Authorization": f"Bearer lgc{server_key[3:]}"},  # the right secret, the wrong kind
        {"Authorization": "Bearer not-a-key"},
        {"Authorization": f"Basic {server_key}"},
        {"X-API-Key": "lgs_unknown_0123456789abcdef"},
    ):
        r = client.get("/sdk/v1/snapshot", headers=headers)
        assert r.status_code == 401, headers
        assert r.json()["code"] == "unauthenticated"


@pytest.mark.parametrize("backend", ["sqlite"])
def test_x_api_key_is_accepted_too(client: TestClient, server_key: str) -> None:
    client.headers.pop("Authorization")
    r = client.get("/sdk/v1/snapshot", headers={"X-API-Key": server_key})
    assert r.status_code == 200


def test_a_revoked_key_is_refused_within_about_a_second(client: TestClient, admin: Admin) -> None:
    key, prefix = admin.sdk_key(P, ENV, "server")
    assert client.get("/sdk/v1/snapshot", headers=bearer(key)).status_code == 200  # now cached
    admin.revoke(P, ENV, prefix)
    revoked = time.monotonic()
    while client.get("/sdk/v1/snapshot", headers=bearer(key)).status_code == 200:
        assert time.monotonic() - revoked < 1.5, "revoked key still served"
        time.sleep(0.05)
    r = client.post("/sdk/v1/evaluate", json={"context": {}}, headers=bearer(key))
    assert r.status_code == 401
    assert "revoked" in r.json()["detail"]


# -- evaluation counts ------------------------------------------------------------------


def _row(**fields: Any) -> dict[str, Any]:
    row = {
        "flag": "public", "variation": "on", "reason": "RULE_MATCH", "count": 12,
        "start": "2026-11-25T10:00:00Z", "end": "2026-11-25T10:01:00+00:00",
    }  # fmt: skip
    row.update(fields)
    return {k: v for k, v in row.items() if v is not ...}


def test_evaluation_counts_are_stored(
    client: TestClient, services: Services, client_key: str, server_key: str
) -> None:
    body = {"sdk": {"name": "lockgate-python", "version": "0.1.0"}, "counts": [_row()]}
    r = client.post("/sdk/v1/events", json=body, headers=bearer(client_key))
    assert r.status_code == 202, r.text
    assert r.json() == {"accepted": 1}
    r = client.post("/sdk/v1/events", json={"counts": [_row(count=3)]}, headers=bearer(server_key))
    assert r.status_code == 202
    with services.view() as conn:
        rows = conn.execute(select(evaluation_counts).order_by(evaluation_counts.c.id)).all()
    assert [(r.flag, r.variation, r.reason, r.window_end > "", r.sdk) for r in rows] == [
        ("public", "on", "RULE_MATCH", True, "lockgate-python/0.1.0"),
        ("public", "on", "RULE_MATCH", True, "unknown/?"),
    ]
    assert [row._mapping["count"] for row in rows] == [12, 3]
    # Timestamps are stored in the one canonical form, whatever offset notation was sent.
    assert (rows[0].window_start, rows[0].window_end) == (
        "2026-11-25T10:00:00.000000Z",
        "2026-11-25T10:01:00.000000Z",
    )
    assert client.post("/sdk/v1/events", json={}, headers=bearer(server_key)).status_code == 202


BAD_COUNTS = [
    (_row(count=0), "counts[1].count"),
    (_row(count="12"), "counts[1].count"),
    (_row(flag=""), "counts[1].flag"),
    (_row(flag=...), "counts[1].flag"),
    (_row(reason="x" * 33), "counts[1].reason"),
    (_row(start="yesterday, 10am"), "counts[1].start"),
    (_row(start="2026-11-25T10:00:00"), "counts[1].start"),
    (_row(end="2026-11-25T09:59:00Z"), "counts[1].end"),
    (_row(bogus=1), "counts[1].bogus"),
    (_row(count=2**31), "counts[1].count"),
    (_row(start="0001-01-01T00:00:00+23:59"), "counts[1].start"),
    (_row(start="1969-12-31T23:59:59Z"), "counts[1].start"),
    (_row(end="9999-12-31T23:59:59-23:59"), "counts[1].end"),
    (_row(start="0001-01-01T00:00:00Z"), "counts[1].start"),
]


@pytest.mark.parametrize("backend", ["sqlite"])
def test_bad_counts_are_422_naming_the_field(
    client: TestClient, services: Services, server_key: str
) -> None:
    for row, field in BAD_COUNTS:
        body = {"counts": [_row(), row]}
        r = client.post("/sdk/v1/events", json=body, headers=bearer(server_key))
        assert r.status_code == 422, r.text
        assert [e["field"] for e in r.json()["errors"]] == [field]
    with services.view() as conn:  # nothing of a refused request is stored
        assert conn.execute(select(evaluation_counts)).all() == []


def test_counts_at_the_edges_of_the_range_are_stored(
    client: TestClient, services: Services, server_key: str
) -> None:
    rows = [
        _row(start="1970-01-01T05:00:00+05:00", end="1970-01-01T00:00:00Z"),
        _row(start="9999-12-31T23:59:59Z", end="9999-12-31T23:00:00-00:59:59", count=2**31 - 1),
    ]
    r = client.post("/sdk/v1/events", json={"counts": rows}, headers=bearer(server_key))
    assert r.status_code == 202, r.text
    with services.view() as conn:
        stored = conn.execute(select(evaluation_counts).order_by(evaluation_counts.c.id)).all()
    assert [(r.window_start, r.window_end, r._mapping["count"]) for r in stored] == [
        ("1970-01-01T00:00:00.000000Z", "1970-01-01T00:00:00.000000Z", 12),
        ("9999-12-31T23:59:59.000000Z", "9999-12-31T23:59:59.000000Z", 2**31 - 1),
    ]


@pytest.mark.parametrize("backend", ["sqlite"])
def test_count_bodies_are_bounded(client: TestClient, server_key: str) -> None:
    row = {"flag": "f", "reason": "R", "count": 1, "start": "2026-11-25T10:00Z"}
    row["end"] = row["start"]
    too_many = {"counts": [row] * (MAX_COUNT_ROWS + 1)}
    r = client.post("/sdk/v1/events", json=too_many, headers=bearer(server_key))
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["counts"]
    huge = json.dumps({"counts": [row | {"flag": "f" * 128}] * MAX_COUNT_ROWS * 10})
    r = client.post(
        "/sdk/v1/events",
        content=huge,
        headers={**bearer(server_key), "Content-Type": "application/json"},
    )
    assert r.status_code == 413
    assert r.json()["code"] == "payload_too_large"


def test_snapshot_fast_path_answers_cached_keys_like_the_application(
    client: TestClient, server_key: str
) -> None:
    """Once the key is cached and the snapshot held, polls are answered before routing —
    with the same status, ETag and body as the application gives."""
    headers = {"Authorization": f"Bearer {server_key}"}
    first = client.get("/sdk/v1/snapshot", headers=headers)  # the application: fills caches
    again = client.get("/sdk/v1/snapshot", headers=headers)  # the fast path
    assert again.status_code == first.status_code == 200
    assert again.headers["etag"] == first.headers["etag"]
    assert again.json() == first.json()
    assert "x-request-id" not in again.headers  # it did not go through the application
    etag = first.headers["etag"]
    not_modified = client.get("/sdk/v1/snapshot", headers={**headers, "If-None-Match": etag})
    assert not_modified.status_code == 304
    assert not_modified.content == b""
    stale = client.get("/sdk/v1/snapshot", headers={**headers, "If-None-Match": '"0"'})
    assert stale.status_code == 200


# -- bounded work per request -------------------------------------------------------------


@pytest.fixture
def regex_key(client: TestClient, admin: Admin) -> str:
    patterns = [f"^team-{i}[a-z]+x$" for i in range(20)]
    clauses = [{"attribute": "groups", "op": "matches", "values": patterns}]
    rule = {"id": "teams", "clauses": clauses, "serve": {"variation": "on"}}
    admin.configure(P, "public", ENV, on=True, rules=[rule])
    key = admin.sdk_key(P, ENV, "client")[0]
    admin.snapshot(admin.sdk_key(P, ENV, "server")[0], at_least=admin.stored_version(P, ENV))
    return key


@pytest.mark.parametrize(
    ("context", "field"),
    [
        pytest.param({"groups": ["g"] * 101}, "context.groups", id="long-list"),
        pytest.param({"groups": ["team-" + "a" * 1000] * 100}, "context.groups", id="work"),
        pytest.param({f"a{i}": i for i in range(129)}, "context", id="attributes"),
    ],
)
def test_evaluate_refuses_a_context_over_its_limits_with_413_naming_the_field(
    client: TestClient, regex_key: str, context: dict[str, Any], field: str
) -> None:
    r = client.post("/sdk/v1/evaluate", json={"context": context}, headers=bearer(regex_key))
    assert r.status_code == 413
    assert r.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in r.json()["errors"]] == [field]
    assert r.json()["detail"].startswith(field + " ")


def test_evaluate_runs_a_heavy_context_on_a_worker_thread(
    client: TestClient, regex_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from lockgate.delivery import remote

    threads: list[str] = []
    original = remote.evaluate_all

    def recording(*args: Any) -> Any:
        threads.append(threading.current_thread().name)
        return original(*args)

    monkeypatch.setattr(remote, "evaluate_all", recording)
    monkeypatch.setattr("lockgate.api.routes.sdk.evaluate_all", recording)
    light = {"key": "u1", "groups": ["team-1abcx"]}
    heavy = {"key": "u1", "groups": ["team-1" + "a" * 200 + "x"] * 2}  # 5,800 units
    for context in (light, heavy):
        r = client.post("/sdk/v1/evaluate", json={"context": context}, headers=bearer(regex_key))
        assert r.status_code == 200
        assert r.json()["flags"]["public"]["variation"] == "on"
    light_thread, heavy_thread = threads
    assert "AnyIO worker thread" not in light_thread  # inline, on the event loop
    assert "AnyIO worker thread" in heavy_thread


def test_a_draining_server_refuses_new_streams_but_keeps_answering_snapshots(
    client: TestClient, server_key: str
) -> None:
    hub = client.app.state.hub  # type: ignore[attr-defined]
    hub.drain()  # what SIGTERM does in `lockgate serve`
    headers = bearer(server_key)
    refused = client.get("/sdk/v1/stream", headers=headers)
    assert refused.status_code == 503
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["code"] == "shutting_down"
    assert client.get("/sdk/v1/snapshot", headers=headers).status_code == 200
    assert client.get("/readyz").status_code == 503  # load balancers stop sending traffic
