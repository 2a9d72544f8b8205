"""Clean-up through the real app, on SQLite and PostgreSQL: a behavior declared by a
contract goes through its whole life with the clock passed in — rolling out, full release,
two healthy review windows, cleanup due (audited, webhook queued), archive refused while
referenced, forced with a reason, restored — and the cleanup report."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from lockgate.control.base import Services
from lockgate.control.jobs import BackgroundJobs, standard_jobs
from lockgate.settings import SettingsError, behavior_lifetimes, load_settings
from lockgate.store.tables import webhook_deliveries
from tests.api.helpers import bearer

P = "/api/v1/projects/shop"
FLAG = f"{P}/flags/checkout"
LIFECYCLE = f"{FLAG}/lifecycle"
CONTRACT = """\
ai_generated_software_control:
  behavior: "Generated checkout workflow"
  key: checkout
  kind: backend_workflow
  owner: growth
  risk_level: low
  allowed_modes: [off, observe, full]
  cleanup_rule: "remove temporary rollout flag after full release and two healthy review windows"
"""


def _setup(client: TestClient) -> None:
    assert client.post("/api/v1/projects", json={"key": "shop", "name": "Shop"}).status_code == 201
    for env in ({"key": "staging"}, {"key": "production", "protected": True}):
        assert client.post(f"{P}/environments", json=env).status_code == 201
    body = {
        "key": "owner-hook",
        "url": "https://93.184.215.14/hooks",
        "event_types": ["cleanup.due"],
    }
    assert client.post(f"{P}/webhooks", json=body).status_code == 201
    r = client.post(f"{P}/contracts/apply", json={"source": CONTRACT, "file": "checkout.yaml"})
    assert r.status_code == 200, r.text


def _at(services: Services, moment: datetime) -> None:
    services.clock = lambda: moment


def _configure(client: TestClient, env: str, changes: dict[str, Any]) -> None:
    path = f"{FLAG}/environments/{env}"
    version = client.get(path).headers["ETag"]
    r = client.patch(path, json={**changes, "reason": "rollout"}, headers={"If-Match": version})
    assert r.status_code == 200, r.text


def _percent(n: int) -> dict[str, Any]:
    weights = [("full", n * 1000), ("off", 100_000 - n * 1000)]
    return {"split": [{"variation": v, "weight": w} for v, w in weights if w]}


def _stage(client: TestClient) -> dict[str, Any]:
    r = client.get(LIFECYCLE)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _run_jobs(services: Services) -> int:
    jobs = BackgroundJobs(
        services, standard_jobs(services, checkpoint_every=10, checkpoint_minutes=0)
    )
    return (jobs.run_once() or {})["cleanup-rules"]


def _upload(client: TestClient, refs: list[dict[str, Any]], branch: str = "main") -> Any:
    body = {"repository": "acme/shop", "branch": branch, "commit": "abc123", "files_scanned": 3,
            "references": refs}  # fmt: skip
    return client.post(f"{P}/code-refs", json=body)


REF = {
    "key": "checkout",
    "path": "app/checkout.py",
    "line": 12,
    "text": 'client.mode("checkout", ctx)',
}


def test_a_behavior_through_its_whole_life(client: TestClient, services: Services) -> None:
    t0 = services.clock()
    _setup(client)
    first = _stage(client)
    assert (first["stage"], first["lifecycle"]) == ("defined", "temporary")
    assert first["cleanup_rule"]["kind"] == "full_release"
    assert first["cleanup_rule"]["healthy_review_windows"] == 2

    _at(services, t0 + timedelta(days=1))
    _configure(client, "production", {"on": True, "default": _percent(5)})
    assert _stage(client)["stage"] == "rolling_out"
    _at(services, t0 + timedelta(days=2))
    _configure(client, "production", {"default": _percent(100)})
    released = _stage(client)
    assert released["stage"] == "released"
    assert released["since"].startswith((t0 + timedelta(days=2)).date().isoformat())
    assert released["rule_check"]["met"] is False

    _at(services, t0 + timedelta(days=15))
    assert _run_jobs(services) == 0  # one healthy window of two
    assert _upload(client, [REF]).status_code == 201
    _at(services, t0 + timedelta(days=16, hours=1))
    assert _run_jobs(services) == 1
    assert _run_jobs(services) == 0  # marked once
    due = _stage(client)
    assert due["stage"] == "cleanup_due"
    assert due["cleanup_evidence"]["check"]["healthy_review_windows"] == 2
    assert due["cleanup_evidence"]["code_references"] == 1
    assert [(r["repository"], r["path"], r["line"]) for r in due["code_references"]] == [
        ("acme/shop", "app/checkout.py", 12)
    ]
    entries = client.get("/api/v1/audit", params={"project": "shop", "action": "flag:cleanup_due"})
    assert entries.status_code == 200, entries.text
    (entry,) = entries.json()["items"]
    assert entry["actor_name"] == "system:cleanup"
    assert entry["evidence"]["rule"]["summary"].startswith("after full release")
    with services.view() as conn:
        queued = conn.execute(
            select(webhook_deliveries.c.event_type, webhook_deliveries.c.data)
        ).all()
    assert [(q.event_type, q.data["behavior"], q.data["owner"]) for q in queued] == [
        ("cleanup.due", "checkout", "growth")
    ]
    assert queued[0].data["code_references"][0]["path"] == "app/checkout.py"

    refused = client.post(f"{LIFECYCLE}/archive", json={"reason": "done"})
    assert refused.status_code == 409, refused.text
    assert "1 code references" in refused.json()["detail"]
    assert refused.json()["blockers"]["code_references"] == 1
    no_reason = client.post(f"{LIFECYCLE}/archive", json={"force": True})
    assert no_reason.status_code == 422
    assert no_reason.json()["errors"][0]["field"] == "reason"
    forced = client.post(f"{LIFECYCLE}/archive", json={"force": True, "reason": "old path removed"})
    assert forced.status_code == 200, forced.text
    assert forced.json()["archived"] is True
    gone = _stage(client)
    assert gone["stage"] == "archived"
    evaluated = client.post(
        f"{P}/environments/production/evaluate",
        json={"flag": "checkout", "context": {"key": "u1"}, "default": "off"},
    )
    assert evaluated.status_code == 200, evaluated.text
    assert (evaluated.json()["value"], evaluated.json()["error_code"]) == ("off", "FLAG_NOT_FOUND")
    archived = client.get("/api/v1/audit", params={"project": "shop", "action": "flag:archived"})
    (archive_entry,) = archived.json()["items"]
    assert archive_entry["evidence"]["archive"]["forced"] is True
    assert archive_entry["evidence"]["archive"]["code_references"] == 1

    report = client.get(f"{P}/cleanup-report").json()
    (growth,) = report["owners"]
    assert growth["owner"] == "growth"
    assert [g["behavior"] for g in growth["referenced_but_gone"]] == ["checkout"]
    assert growth["referenced_but_gone"][0]["status"] == "archived"

    back = client.post(f"{LIFECYCLE}/restore", json={"reason": "still needed"})
    assert back.status_code == 200, back.text
    assert back.json()["archived"] is False
    assert _stage(client)["stage"] == "cleanup_due"


def test_archive_is_refused_while_evaluated_and_allowed_once_quiet(
    client: TestClient, services: Services
) -> None:
    _setup(client)
    r = client.post(f"{P}/environments/staging/sdk-keys", json={"kind": "server"})
    assert r.status_code == 201, r.text
    now = services.clock()
    end = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    row = {"flag": "checkout", "variation": "off", "reason": "OFF", "count": 40,
           "start": end, "end": end}  # fmt: skip
    sent = client.post("/sdk/v1/events", json={"counts": [row]}, headers=bearer(r.json()["key"]))
    assert sent.status_code == 202
    assert _stage(client)["stage"] == "in_development"
    refused = client.post(f"{LIFECYCLE}/archive", json={"reason": "unused"})
    assert refused.status_code == 409
    assert refused.json()["blockers"]["evaluations"] == 40
    # The PATCH path keeps the same guard: there is no way around it.
    version = client.get(FLAG).headers["ETag"]
    patched = client.patch(
        FLAG, json={"archived": True, "reason": "x"}, headers={"If-Match": version}
    )
    assert patched.status_code == 409
    _at(services, now + timedelta(days=8))
    quiet = client.post(f"{LIFECYCLE}/archive", json={"reason": "unused"})
    assert quiet.status_code == 200, quiet.text
    entry = client.get("/api/v1/audit", params={"project": "shop", "action": "flag:archived"})
    assert entry.json()["items"][0]["evidence"]["archive"]["forced"] is False


def test_permanent_behaviors_state_why_and_are_never_due(
    client: TestClient, services: Services
) -> None:
    _setup(client)
    version = client.get(FLAG).headers["ETag"]
    no_reason = client.patch(FLAG, json={"lifecycle": "permanent"}, headers={"If-Match": version})
    assert no_reason.status_code == 422
    assert no_reason.json()["errors"][0]["field"] == "reason"
    made = client.patch(
        FLAG, json={"lifecycle": "permanent", "reason": "operational kill switch"},
        headers={"If-Match": version},
    )  # fmt: skip
    assert made.status_code == 200, made.text
    _configure(client, "production", {"on": True, "default": _percent(100)})
    _at(services, services.clock() + timedelta(days=60))
    assert _run_jobs(services) == 0
    body = _stage(client)
    assert (body["stage"], body["permanent_reason"]) == ("released", "operational kill switch")
    assert (body["rule_check"], body["stale"]) == (None, [])


def test_code_refs_upload_replaces_per_branch_and_names_bad_fields(client: TestClient) -> None:
    _setup(client)
    assert _upload(client, [REF, {**REF, "line": 30}]).status_code == 201
    assert _upload(client, [{**REF, "key": "ghost"}], branch="next").status_code == 201
    assert _upload(client, [REF]).status_code == 201  # replaces main's scan
    listed = client.get(f"{P}/code-refs").json()
    assert [(u["repository"], u["branch"]) for u in listed["uploads"]] == [
        ("acme/shop", "main"), ("acme/shop", "next")
    ]  # fmt: skip
    assert [r["line"] for r in listed["references"]["checkout"]] == [12]
    assert client.get(f"{P}/code-refs", params={"flag": "ghost"}).json()["references"].keys() == {
        "ghost"
    }
    report = client.get(f"{P}/cleanup-report").json()
    unknown = [g for o in report["owners"] for g in o["referenced_but_gone"]]
    assert [(g["behavior"], g["status"]) for g in unknown] == [("ghost", "unknown")]
    bad = _upload(client, [{**REF, "line": 0}])
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
    audit = client.get("/api/v1/audit", params={"project": "shop", "action": "code_refs:uploaded"})
    assert [e["object_key"] for e in audit.json()["items"]] == [
        "acme/shop@main", "acme/shop@next", "acme/shop@main"
    ][::-1]  # fmt: skip


QUIET_CONTRACT = CONTRACT.replace(
    '  cleanup_rule: "remove temporary rollout flag after full release and two healthy review '
    'windows"\n',
    "  cleanup_rule:\n"
    '    description: "remove when nothing evaluates it"\n'
    "    after: no_evaluation\n"
    "    days: 14\n",
)


def test_no_evaluation_for_14_days_marks_it_due_and_the_report_lists_it(
    client: TestClient, services: Services
) -> None:
    t0 = services.clock()
    _setup(client)
    r = client.post(f"{P}/contracts/apply", json={"source": QUIET_CONTRACT, "file": "c.yaml"})
    assert r.status_code == 200, r.text
    key = client.post(f"{P}/environments/staging/sdk-keys", json={"kind": "server"}).json()["key"]
    moment = (t0 + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    row = {"flag": "checkout", "variation": "full", "reason": "FALLTHROUGH", "count": 7,
           "start": moment, "end": moment}  # fmt: skip
    assert (
        client.post("/sdk/v1/events", json={"counts": [row]}, headers=bearer(key)).status_code
        == 202
    )
    _at(services, t0 + timedelta(days=16))
    assert _run_jobs(services) == 0  # 13 days since the last evaluation
    body = _stage(client)
    assert body["rule_check"]["reason"] == "evaluated 13.0 days ago"
    assert [(s["environment"], s["kind"]) for s in body["stale"]] == [
        ("production", "no_evaluations")
    ]
    _at(services, t0 + timedelta(days=17, hours=1))
    assert _run_jobs(services) == 1
    due = _stage(client)
    assert due["stage"] == "cleanup_due"
    assert due["cleanup_evidence"]["rule"]["kind"] == "no_evaluation"
    assert due["cleanup_evidence"]["check"]["last_evaluated"].startswith(moment[:10])
    report = client.get(f"{P}/cleanup-report", params={"owner": "growth"}).json()
    (growth,) = report["owners"]
    assert [d["behavior"] for d in growth["cleanup_due"]] == ["checkout"]
    assert [s["behavior"] for s in growth["stale"]] == ["checkout"]
    kinds = {(f["environment"], f["kind"]) for f in growth["stale"][0]["findings"]}
    assert kinds == {("production", "no_evaluations"), ("staging", "no_evaluations")}
    assert client.get(f"{P}/cleanup-report", params={"owner": "nobody"}).json()["owners"] == []


def test_lifetimes_per_kind_are_settings() -> None:
    days = behavior_lifetimes(
        load_settings(environ={"LOCKGATE_BEHAVIOR_LIFETIMES": "ui_path=14, model_route=45"})
    )
    assert (days["ui_path"], days["model_route"], days["integration"]) == (14, 45, 90)


@pytest.mark.parametrize("text", ["widget=3", "ui_path", "ui_path=0", "ui_path=x"])
def test_bad_lifetimes_are_refused_at_start(text: str) -> None:
    with pytest.raises(SettingsError, match="behavior_lifetimes"):
        load_settings(environ={"LOCKGATE_BEHAVIOR_LIFETIMES": text})


def test_the_quiet_days_and_lifetimes_of_the_services_apply(
    client: TestClient, services: Services
) -> None:
    t0 = services.clock()
    _setup(client)
    key = client.post(f"{P}/environments/staging/sdk-keys", json={"kind": "server"}).json()["key"]
    end = t0.strftime("%Y-%m-%dT%H:%M:%SZ")
    row = {"flag": "checkout", "variation": "off", "reason": "OFF", "count": 3,
           "start": end, "end": end}  # fmt: skip
    assert (
        client.post("/sdk/v1/events", json={"counts": [row]}, headers=bearer(key)).status_code
        == 202
    )
    services.behavior_lifetimes = {"backend_workflow": 3}
    services.archive_quiet_days = 30
    _at(services, t0 + timedelta(days=10, hours=1))
    body = _stage(client)
    assert [s["kind"] for s in body["stale"]] == ["past_lifetime"]
    assert body["stale"][0]["detail"] == "10 days old; a backend_workflow lives 3"
    refused = client.post(f"{LIFECYCLE}/archive", json={"reason": "unused"})
    assert refused.status_code == 409
    assert "3 evaluations in the last 30 days" in refused.json()["detail"]
    services.archive_quiet_days = 7
    assert client.post(f"{LIFECYCLE}/archive", json={"reason": "unused"}).status_code == 200
