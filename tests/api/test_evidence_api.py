"""The evidence report and release notes through the real app, on SQLite and PostgreSQL:
a behavior applied from a contract, expanded through an approved change request, killed,
restored, put under an incident, evaluated by an SDK — and every number checked."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lockgate.control.base import Services
from tests.api.helpers import add_principal, bearer

FIXTURES = Path(__file__).parents[1] / "contracts" / "fixtures"
# The executable contract without guardrails and stages: this story is about people's
# changes, kills and incidents (tests/control/guardrails covers automatic ones).
_FULL = (FIXTURES / "executable.yaml").read_text()
EXECUTABLE = re.sub(
    r"  rollout_stages:\n.*?(?=  environments:)",
    "",
    re.sub(r"  guardrails:\n.*?(?=  approval_required_when:)", "", _FULL, flags=re.S),
    flags=re.S,
)
FLAG = "/api/v1/projects/shop/flags/renewal-recommendations"


def _now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def story(client: TestClient, services: Services) -> dict[str, Any]:
    """Contract applied; production's first exposure approved by ava and applied; killed and
    restored in production; an incident started and ended; 70 evaluations reported."""
    assert client.post("/api/v1/projects", json={"key": "shop"}).status_code == 201
    for env in ({"key": "staging"}, {"key": "production", "protected": True}):
        assert client.post("/api/v1/projects/shop/environments", json=env).status_code == 201
    for segment in ("internal-users", "regions-under-review"):
        body = {"key": segment, "included": ["u-inside"] if segment == "internal-users" else []}
        assert client.post("/api/v1/projects/shop/segments", json=body).status_code == 201
    started = _now()
    r = client.post(
        "/api/v1/projects/shop/contracts/apply",
        json={"source": EXECUTABLE, "file": "renewal.yaml"},
    )
    assert r.status_code == 202, r.text
    (request_id,) = r.json()["pending"]
    ava = add_principal(services, "ava", [("shop", "approver")])

    def approve_and_apply(number: int) -> None:
        request = client.get(f"/api/v1/change-requests/{number}").json()
        r = client.post(
            f"/api/v1/change-requests/{number}/approve",
            json={"comment": "checked", "change_hash": request["change_hash"]},
            headers=bearer(ava),
        )
        assert r.status_code == 200, r.text
        assert client.post(f"/api/v1/change-requests/{number}/apply", json={}).status_code == 200

    approve_and_apply(request_id)
    r = client.post(
        f"{FLAG}/kill", json={"environments": ["production"], "reason": "wrong renewal dates"}
    )
    assert r.status_code == 200, r.text
    killed_version = r.json()["environments"][0]["version"]
    r = client.post(
        f"{FLAG}/environments/production/restore",
        json={"reason": "dates fixed in 4.2.1"},
        headers={"If-Match": f'"{killed_version}"'},
    )
    assert r.status_code == 202, r.text  # a restore expands again: approved like one
    restore_request = r.json()["id"]
    approve_and_apply(restore_request)
    r = client.post(
        "/api/v1/projects/shop/incidents",
        json={"environment": "production", "min_risk": "medium", "reason": "billing outage"},
    )
    assert r.status_code == 201, r.text
    incident = r.json()["id"]
    r = client.post(
        f"/api/v1/projects/shop/incidents/{incident}/end",
        json={"reason": "billing back"},
        headers=bearer(ava),
    )
    assert r.status_code in (200, 202), r.text
    r = client.post(
        "/api/v1/projects/shop/environments/production/sdk-keys",
        json={"kind": "server", "name": "renewals"},
    )
    key = r.json()["key"]
    window = _now().replace(microsecond=0)
    counts = [
        {"flag": "renewal-recommendations", "variation": "observe", "reason": "RULE_MATCH",
         "count": 40},
        {"flag": "renewal-recommendations", "variation": "off", "reason": "DEFAULT", "count": 25},
        {"flag": "renewal-recommendations", "variation": "fallback", "reason": "KILLED",
         "count": 5},
        {"flag": "another-flag", "variation": "on", "reason": "DEFAULT", "count": 999},
    ]  # fmt: skip
    for row in counts:
        row |= {"start": window.isoformat(), "end": (window + timedelta(seconds=60)).isoformat()}
    r = client.post("/sdk/v1/events", json={"counts": counts}, headers=bearer(key))
    assert r.status_code == 202, r.text
    return {
        "request": request_id,
        "restore": restore_request,
        "incident": incident,
        "started": started,
    }


def test_the_report_answers_who_changed_what_and_with_whose_approval(
    client: TestClient, story: dict[str, Any]
) -> None:
    r = client.get(f"{FLAG}/evidence")
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["behavior"]["key"] == "renewal-recommendations"
    assert report["behavior"]["risk_tier"] == "medium"
    cleanup = report["behavior"]["cleanup"]
    assert (cleanup["stage"], cleanup["code_references"]) == ("rolling_out", 0)
    assert cleanup["cleanup_rule"] == "after full release and 2 healthy review windows of 7 days"
    assert report["contract"]["current"]["version"] == 1
    assert [c["filename"] for c in report["contract"]["versions"]] == ["renewal.yaml"]

    first, restore = report["change_requests"]
    assert (first["id"], restore["id"]) == (story["request"], story["restore"])
    assert first["state"] == restore["state"] == "applied"
    assert first["approved_by"] == restore["approved_by"] == ["ava"]
    assert first["rule"] == "posture.medium.approvals.protected = 1"
    assert first["applied_seq"] < restore["applied_seq"]

    envs = {e["environment"]: e for e in report["environments"]}
    production = envs["production"]["timeline"]
    # created off → first audience (approved) → killed → restored (incident kept out: an
    # overlay, not a configuration version)
    assert [p["killed"] for p in production] == [False, False, True, False]
    assert production[2]["serving"].startswith("killed: everyone gets the fallback")
    assert production[2]["exposure"] == 0
    assert "rule contract-first-audience gets observe" in production[1]["serving"]
    assert envs["production"]["protected"] is True

    assert [r["action"] for r in report["reversals"]] == ["flag:killed", "flag:restored"]
    assert report["reversals"][0]["reason"] == "wrong renewal dates"
    (incident,) = report["incidents"]
    assert incident["id"] == story["incident"]
    assert incident["state"] == "ended"
    assert incident["reason"] == "billing outage"

    (production_decisions,) = report["decisions"]
    assert production_decisions == {
        "environment": "production",
        "total": 70,
        "variations": {"observe": 40, "off": 25, "fallback": 5},
        "reasons": {"RULE_MATCH": 40, "DEFAULT": 25, "KILLED": 5},
    }

    notes = report["release_notes"]
    by_action: dict[str, list[dict[str, Any]]] = {}
    for note in notes:
        by_action.setdefault(note["action"], []).append(note)
    approved = [
        n for n in by_action["flag:configured"] if n["approval"]["kind"] == "change_request"
    ]
    assert len(approved) == 1  # the first exposure; the restore is a flag:restored note
    assert approved[0]["approval"]["approved_by"] == ["ava"]
    assert approved[0]["direction"] == "expansion"
    assert approved[0]["environment"] == "production"
    (killed,) = by_action["flag:killed"]
    # The contract's fallback ranks above "off", which the default audience got: the kill
    # is recorded as the classifier saw it, and applied at once as every kill is.
    assert killed["direction"] == "expansion"
    assert killed["approval"]["rule"] == "reversal: applied at once"
    assert killed["why"] == "wrong renewal dates"
    assert killed["approval"]["kind"] == "direct"
    assert killed["for_whom"].startswith("killed: everyone gets the fallback")
    (restored,) = by_action["flag:restored"]
    assert restored["approval"]["kind"] == "change_request"
    assert restored["approval"]["change_request"] == story["restore"]
    assert restored["direction"] == "expansion"
    (incident_started,) = by_action["incident:started"]
    assert "renewal-recommendations serve their fallback" in incident_started["for_whom"]

    audit = report["audit"]
    assert audit["verification"]["ok"] is True
    assert audit["actions"]["flag:killed"] == 1
    assert audit["actions"]["contract:applied"] == 1
    controls = {i["control"] for i in report["frameworks"]["items"]}
    assert controls >= {"contract", "approvals", "kill_switch", "incident_mode", "audit_chain",
                        "decision_statistics", "authority_modes"}  # fmt: skip
    assert "not a claim" in report["frameworks"]["note"]


def test_the_same_report_as_markdown_and_as_one_html_file(
    client: TestClient, story: dict[str, Any]
) -> None:
    md = client.get(f"{FLAG}/evidence", params={"format": "md"})
    assert md.status_code == 200
    assert md.headers["content-type"].startswith("text/markdown")
    text = md.text
    assert text.startswith("# Evidence report: renewal-recommendations")
    assert "| production | 70 | observe: 40, off: 25, fallback: 5 |" in text
    assert "approved by ava (posture.medium.approvals.protected = 1)" in text
    assert "Verified: the whole chain" in text
    assert "Relevant to, not compliant with" in text
    assert (
        "- **Stage:** rolling out; cleanup rule: after full release and 2 healthy review "
        "windows of 7 days; 0 code references"
    ) in text

    page = client.get(f"{FLAG}/evidence", params={"format": "html"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    body = page.text
    assert body.startswith("<!doctype html>")
    assert body.count("<svg") == 2  # one exposure chart per environment
    assert "<script" not in body
    assert not re.search(r"(src|href)=\"https?:", body)  # self-contained
    assert "@media print" in body
    assert html.escape("wrong renewal dates") in body


def test_release_notes_and_the_range(client: TestClient, story: dict[str, Any]) -> None:
    notes = client.get(f"{FLAG}/release-notes").json()["items"]
    assert [n["action"] for n in notes if n["action"] != "flag:configured"] == [
        "flag:killed", "flag:restored", "incident:started", "incident:ended",
    ]  # fmt: skip
    later = (_now() + timedelta(hours=1)).isoformat()
    r = client.get(f"{FLAG}/release-notes", params={"from": later, "to": later + "1"})
    assert r.status_code == 422
    window = {"from": later, "to": (_now() + timedelta(hours=2)).isoformat()}
    r = client.get(f"{FLAG}/release-notes", params=window)
    assert r.status_code == 200
    assert r.json()["items"] == []
    report = client.get(f"{FLAG}/evidence", params=window).json()
    assert report["release_notes"] == []
    assert report["reversals"] == []
    # The configuration in force when the range starts is shown; nothing after it.
    assert all(len(e["timeline"]) == 1 for e in report["environments"])


@pytest.mark.parametrize(
    ("params", "field"),
    [({"from": "yesterday"}, "from"), ({"to": "soon"}, "to"), ({"format": "pdf"}, "format")],
)
def test_bad_queries_name_the_field(
    client: TestClient, story: dict[str, Any], params: dict[str, str], field: str
) -> None:
    r = client.get(f"{FLAG}/evidence", params=params)
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert field in r.text


def test_unknown_behaviors_and_outsiders_get_404(
    client: TestClient, services: Services, story: dict[str, Any]
) -> None:
    assert client.get("/api/v1/projects/shop/flags/nope/evidence").status_code == 404
    outsider = add_principal(services, "olga", [])
    r = client.get(f"{FLAG}/evidence", headers=bearer(outsider))
    assert r.status_code == 404


def test_a_guardrail_trigger_and_decision_records_in_the_report(
    client: TestClient, services: Services
) -> None:
    """A staged rollout whose guardrail fires: the breach's numbers, the automatic actions
    and the decision records SDKs sent, in JSON and Markdown."""
    from lockgate.control.guardrails import cycle
    from lockgate.control.guardrails import definitions as guard_use
    from tests.control.guardrails.helpers import ADMIN, START, add_summaries, setup

    clock = setup(services)  # shop / prod / assistant, on a clock the report reads too
    guardrail = {"metric": "error", "min_sample": 1000, "window": "1h", "action": "fallback"}
    guard_use.put_guardrail(services, ADMIN, "shop", "assistant", "prod", "errors", guardrail)
    plan = {"variation": "full", "stable": "off", "stages": [{"percent": 5}, {"percent": 100}]}
    guard_use.put_plan(services, ADMIN, "shop", "assistant", "prod", plan)
    cycle.run_cycle(services)  # the first stage
    clock.advance(minutes=1)
    add_summaries(services, clock, rows={"full": (4000, 160), "off": (76_000, 1520)})
    cycle.run_cycle(services)  # 4 % against 2 %: breached, fallback, paused
    r = client.post(
        "/api/v1/projects/shop/environments/prod/sdk-keys", json={"kind": "server", "name": "a"}
    )
    assert r.status_code == 201, r.text
    at = START.isoformat().replace("+00:00", "Z")
    records: list[dict[str, object]] = [
        {"kind": kind, "flag": "assistant", "variation": "off", "reason": reason, "rule": None,
         "context": {"key": f"u{i}"}, "redacted": [], "at": at}
        for i, (kind, reason) in enumerate(
            [("denied", "RULE_MATCH"), ("denied", "RULE_MATCH"), ("kill_fallback", "KILLED")]
        )
    ]  # fmt: skip
    r = client.post(
        "/sdk/v1/decisions",
        json={"sdk": {"name": "test", "version": "1"}, "records": records},
        headers=bearer(r.json()["key"]),
    )
    assert r.status_code == 202, r.text
    clock.advance(minutes=5)

    report = client.get("/api/v1/projects/shop/flags/assistant/evidence").json()
    (guard,) = report["guardrails"]
    assert (guard["environment"], guard["key"], guard["state"]) == ("prod", "errors", "breached")
    assert guard["samples"] == {"full": 4000, "off": 76_000}
    assert guard["estimate"] == pytest.approx(0.02)
    steps = [e["action"] for e in report["guardrail_events"]]
    assert steps == ["guardrail:created", "rollout_plan:created", "rollout_plan:advanced",
                     "guardrail:breached", "rollout_plan:paused"]  # fmt: skip
    breach = report["guardrail_events"][3]
    assert breach["actor"] == "system:guardrails"
    assert breach["samples"] == guard["samples"]
    assert breach["interval"][0] > 0  # the whole interval above zero: a real regression
    assert breach["test"].startswith("asymptotic confidence sequence")
    automatic = report["automatic_actions"]
    assert [(a["action"], a["actor"]) for a in automatic] == [
        ("flag:configured", "system:guardrails"),  # the first stage, as the plan allowed
        ("flag:configured", "system:guardrails"),  # the fallback
    ]
    assert automatic[1]["rule"] == "reduction-immediate"
    assert automatic[1]["samples"] == guard["samples"]
    assert report["decision_records"] == [
        {"environment": "prod", "total": 3, "kinds": {"denied": 2, "kill_fallback": 1}}
    ]
    controls = {i["control"] for i in report["frameworks"]["items"]}
    assert controls >= {"guardrails", "staged_rollout", "decision_log"}

    text = client.get(
        "/api/v1/projects/shop/flags/assistant/evidence", params={"format": "md"}
    ).text
    assert "## Guardrails" in text
    assert "| prod | errors | error | summaries | breached | 0.02 |" in text
    assert "| prod | 3 | denied: 2, kill_fallback: 1 |" in text
    assert "## Automatic actions" in text
