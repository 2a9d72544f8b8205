"""Decision records over HTTP: ingestion (redacted again), queries, export, retention,
privacy settings and subjects (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from lockgate.control.base import Services, iso
from lockgate.control.evidence import decisions
from lockgate.control.jobs import standard_jobs
from lockgate.decisionlog import DecisionKind
from lockgate.privacy import RedactionPolicy
from lockgate.settings import SettingsError, decision_retention, load_settings
from lockgate.store.tables import decision_records, environments
from tests.api.helpers import add_principal, bearer
from tests.delivery.servers import Admin

P, ENV = "shop", "production"
BASE = f"/api/v1/projects/{P}"
LIST = f"{BASE}/environments/{ENV}/decisions"
SECRET = "jane.doe@private.example"


@pytest.fixture
def admin(client: TestClient) -> Admin:
    admin = Admin(client)
    admin.project(P, ENV, "staging")
    return admin


@pytest.fixture
def server_key(admin: Admin) -> str:
    return admin.sdk_key(P, ENV, "server")[0]


def set_privacy(client: TestClient, settings: dict[str, Any], env: str = ENV) -> Any:
    url = f"{BASE}/environments/{env}"
    current = client.get(url)
    assert current.status_code == 200, current.text
    etag = current.headers["etag"]
    return client.patch(url, json={"privacy": settings}, headers={"If-Match": etag})


def record(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "kind": "kill_fallback",
        "flag": "agent",
        "variation": "off",
        "reason": "KILLED",
        "rule": None,
        "context": {"key": "u1", "plan": "pro"},
        "redacted": [],
        "at": "2026-12-01T10:00:00Z",
    }
    return {**base, **fields}


def send(client: TestClient, key: str, *records: dict[str, Any]) -> Any:
    body = {"sdk": {"name": "test", "version": "1"}, "records": list(records)}
    return client.post("/sdk/v1/decisions", json=body, headers=bearer(key))


def test_a_private_attribute_sent_by_a_foreign_client_is_redacted_on_ingestion(
    client: TestClient, server_key: str
) -> None:
    assert (
        set_privacy(client, {"private_attributes": ["email"], "rules": {"ip": "hash"}}).status_code
        == 200
    )
    context = {"key": "u1", "email": SECRET, "ip": "10.1.2.3", "plan": "pro"}
    answer = send(client, server_key, record(context=context, redacted=["phone"]))
    assert answer.status_code == 202, answer.text
    assert answer.json()["accepted"] == 1
    (item,) = client.get(LIST).json()["items"]
    assert item["context"]["plan"] == "pro"
    assert "email" not in item["context"]
    assert item["context"]["ip"].startswith("hmac:")
    assert item["redacted"] == ["email", "phone"]
    assert SECRET not in json.dumps(item)


def test_the_sdk_reads_the_privacy_settings_with_a_server_key_only(
    client: TestClient, admin: Admin, server_key: str
) -> None:
    set_privacy(client, {"private_attributes": ["email"], "rules": {"ip": "hash"}})
    body = client.get("/sdk/v1/privacy", headers=bearer(server_key)).json()
    assert body["private_attributes"] == ["email"]
    assert body["rules"] == {"ip": "hash"}
    assert len(body["salt"]) == 64
    client_key = admin.sdk_key(P, ENV, "client")[0]
    assert client.get("/sdk/v1/privacy", headers=bearer(client_key)).status_code in (401, 403)
    assert send(client, client_key, record()).status_code in (401, 403)
    staging = client.get(f"{BASE}/environments/staging").json()
    assert staging["privacy"] == {"private_attributes": [], "rules": {}}


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        pytest.param({"kind": "maybe"}, "records[1].kind", id="kind"),
        pytest.param({"flag": ""}, "records[1].flag", id="flag"),
        pytest.param({"at": "yesterday"}, "records[1].at", id="at"),
        pytest.param({"context": {"k": {"nested": 1}}}, "records[1].context", id="nested-context"),
        pytest.param({"context": {"k": "x" * 1025}}, "records[1].context", id="long-value"),
        pytest.param({"reason": "R" * 33}, "records[1].reason", id="reason"),
        pytest.param({"extra": 1}, "records[1].extra", id="unknown-field"),
    ],
)
def test_bad_records_are_refused_naming_the_field(
    client: TestClient, server_key: str, services: Services, bad: dict[str, Any], field: str
) -> None:
    answer = send(client, server_key, record(), record(**bad))
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/problem+json")
    fields = [e["field"] for e in answer.json()["errors"]]
    assert any(f.startswith(field) for f in fields), fields
    with services.database.read() as conn:  # nothing stored half-written
        assert conn.execute(select(decision_records)).all() == []


def test_queries_filter_and_page(client: TestClient, server_key: str) -> None:
    records = [
        record(at=f"2026-12-01T10:00:0{i}Z", context={"key": f"u{i % 2}"}) for i in range(5)
    ] + [
        record(kind="denied", reason="RULE_MATCH", rule="r1", at="2026-12-02T10:00:00Z"),
        record(kind="approval_required", variation="ask", reason="SPLIT", flag="other"),
    ]
    assert send(client, server_key, *records).status_code == 202
    everything = client.get(LIST, params={"limit": 3}).json()
    assert len(everything["items"]) == 3
    ids = [i["id"] for i in everything["items"]]
    assert ids == sorted(ids, reverse=True)
    rest = client.get(LIST, params={"limit": 10, "cursor": everything["next_cursor"]}).json()
    assert len(rest["items"]) == 4
    assert rest["next_cursor"] is None

    def count(**params: Any) -> int:
        answer = client.get(LIST, params={"limit": 100, **params})
        assert answer.status_code == 200, answer.text
        return len(answer.json()["items"])

    assert count(kind="kill_fallback") == 5
    assert count(behavior="other") == 1
    assert count(reason="RULE_MATCH") == 1
    assert count(variation="ask") == 1
    assert count(context_key="u1") == 2 + 2  # i = 1, 3, and the two later records
    assert count(since="2026-12-02T00:00:00Z") == 1
    assert count(until="2026-12-01T10:00:02Z") == 2 + 1
    bad = client.get(LIST, params={"since": "soon"})
    assert bad.status_code == 422
    assert [e["field"] for e in bad.json()["errors"]] == ["since"]
    assert client.get(LIST, params={"cursor": "nope"}).json()["errors"][0]["field"] == "cursor"
    assert client.get(LIST, params={"kind": "maybe"}).status_code == 422


def test_a_hashed_key_is_found_by_the_subject_key(client: TestClient, server_key: str) -> None:
    set_privacy(client, {"private_attributes": ["key"], "rules": {"key": "hash"}})
    assert send(client, server_key, record(context={"key": "alice"})).status_code == 202
    (item,) = client.get(LIST, params={"context_key": "alice"}).json()["items"]
    assert item["context_key"].startswith("hmac:")
    assert item["context_key"] != "alice"


def test_the_export_is_jsonl_oldest_first(client: TestClient, server_key: str) -> None:
    send(client, server_key, *[record(context={"key": f"u{i}"}) for i in range(3)])
    answer = client.get(f"{LIST}/export", params={"kind": "kill_fallback"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in answer.text.splitlines()]
    assert [line["context_key"] for line in lines] == ["u0", "u1", "u2"]
    assert {line["environment"] for line in lines} == {ENV}


def test_a_viewer_elsewhere_sees_nothing(
    client: TestClient, services: Services, server_key: str
) -> None:
    outsider = add_principal(services, "outsider")
    answer = client.get(LIST, headers=bearer(outsider))
    assert answer.status_code == 404


def test_retention_deletes_records_older_than_their_kind_keeps(
    client: TestClient, server_key: str, services: Services
) -> None:
    now = services.clock()
    old, recent = iso(now - timedelta(days=40)), iso(now - timedelta(days=5))
    send(
        client,
        server_key,
        record(at=old),
        record(at=recent),
        record(kind="denied", reason="RULE_MATCH", at=old),
    )
    deleted = decisions.apply_retention(services, {"kill_fallback": 30, "denied": 0})
    assert deleted == 1
    kinds = sorted((i["kind"], i["decided_at"][:10]) for i in client.get(LIST).json()["items"])
    assert kinds == [("denied", old[:10]), ("kill_fallback", recent[:10])]


def test_loosening_privacy_needs_an_approval_tightening_applies(
    client: TestClient, admin: Admin
) -> None:
    strict = set_privacy(client, {"private_attributes": ["email", "phone"]})
    assert strict.status_code == 200
    assert strict.json()["privacy"]["private_attributes"] == ["email", "phone"]
    looser = set_privacy(client, {"private_attributes": ["email"]})
    assert looser.status_code == 202, looser.text
    assert "phone" in json.dumps(looser.json())
    bad = set_privacy(client, {"private_attributes": ["email"], "rules": {"email": "keep"}})
    assert bad.status_code == 422
    assert [e["field"] for e in bad.json()["errors"]] == ["privacy.rules.email"]


def test_subject_export_and_deletion_are_audited_without_the_key(
    client: TestClient, server_key: str, admin: Admin, services: Services
) -> None:
    staging_key = admin.sdk_key(P, "staging", "server")[0]
    send(client, server_key, record(context={"key": "alice", "plan": "pro"}), record())
    send(client, staging_key, record(context={"key": "alice"}))
    exported = client.post(f"{BASE}/subjects/export", json={"key": "alice", "reason": "DSAR 17"})
    assert exported.status_code == 200
    lines = [json.loads(line) for line in exported.text.splitlines()]
    assert sorted(line["environment"] for line in lines) == ["production", "staging"]
    planned = client.post(f"{BASE}/subjects/delete", params={"plan": "true"}, json={"key": "alice"})
    assert planned.json()["applied"] is False
    deleted = client.post(f"{BASE}/subjects/delete", json={"key": "alice", "reason": "erasure"})
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["deleted"] == {"production": 1, "staging": 1}
    assert deleted.json()["total"] == 2
    assert client.get(LIST, params={"context_key": "alice"}).json()["items"] == []
    assert len(client.get(LIST).json()["items"]) == 1  # the other subject's record stays
    audit = client.get("/api/v1/audit", params={"object_type": "subject"}).json()["items"]
    assert [entry["action"] for entry in audit] == ["subject:deleted", "subject:exported"]
    assert all(entry["object_key"].startswith("sha256:") for entry in audit)
    assert "alice" not in json.dumps(audit)
    assert audit[0]["reason"] == "erasure"


def test_subject_operations_need_the_admin_role(
    client: TestClient, services: Services, admin: Admin
) -> None:
    editor = add_principal(services, "ed", [(P, "editor")])
    viewer = add_principal(services, "vi", [(P, "viewer")])
    assert client.get(LIST, headers=bearer(viewer)).status_code == 200  # viewers may read
    for path in ("export", "delete"):
        answer = client.post(f"{BASE}/subjects/{path}", json={"key": "a"}, headers=bearer(editor))
        assert answer.status_code == 403
    empty = client.post(f"{BASE}/subjects/delete", json={"key": ""})
    assert empty.status_code == 422
    assert empty.json()["errors"][0]["field"] == "key"


def test_the_environment_salt_is_unique_and_hashes_stably(services: Services, admin: Admin) -> None:
    with services.database.read() as conn:
        salts = conn.execute(select(environments.c.privacy_salt)).scalars().all()
    assert len(set(salts)) == len(salts) == 2
    policy = RedactionPolicy(salt=salts[0])
    assert policy.hash("x") == policy.hash("x") != RedactionPolicy(salt=salts[1]).hash("x")
    assert datetime.now(UTC).year >= 2026


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("", {}, id="default"),
        pytest.param("kill_fallback=365, denied=0", {"kill_fallback": 365, "denied": 0}, id="two"),
    ],
)
def test_retention_settings_per_kind(text: str, expected: dict[str, int]) -> None:
    days = decision_retention(load_settings(environ={"LOCKGATE_DECISION_RETENTION": text}))
    assert days == {kind.value: expected.get(kind.value, 90) for kind in DecisionKind}


@pytest.mark.parametrize("text", ["forever=3", "denied", "denied=-1", "denied=x"])
def test_bad_retention_settings_are_refused_at_start(text: str) -> None:
    with pytest.raises(SettingsError, match="decision_retention"):
        load_settings(environ={"LOCKGATE_DECISION_RETENTION": text})


def test_the_retention_job_runs_only_when_some_kind_expires(services: Services) -> None:
    names = [job.name for job in standard_jobs(services, checkpoint_every=1, checkpoint_minutes=0)]
    assert "decision-retention" in names  # the default keeps records 90 days
    services.decision_retention = dict.fromkeys(services.decision_retention, 0)
    names = [job.name for job in standard_jobs(services, checkpoint_every=1, checkpoint_minutes=0)]
    assert "decision-retention" not in names
