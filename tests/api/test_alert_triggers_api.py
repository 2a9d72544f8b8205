"""Alert triggers: created with a secret shown once, fired by Alertmanager's webhook body,
a reduction applied once per alert, never re-expanded by a resolved alert (SQLite and
PostgreSQL)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lockgate.control.base import Services
from tests.api.helpers import bearer
from tests.delivery.servers import Admin
from tests.signals.test_alertmanager import NOTIFICATION

P, ENV = "shop", "production"
TRIGGERS = f"/api/v1/projects/{P}/environments/{ENV}/alert-triggers"
FLAG = f"/api/v1/projects/{P}/flags/checkout/environments/{ENV}"


@pytest.fixture
def admin(client: TestClient) -> Admin:
    admin = Admin(client)
    admin.project(P, ENV, "staging")
    admin.flag(P, "checkout")
    admin.configure(P, "checkout", ENV, on=True, default={"variation": "on"}, off_variation="off")
    return admin


def _create(client: TestClient, **body: Any) -> dict[str, Any]:
    r = client.post(TRIGGERS, json={"flag": "checkout", "action": "kill", **body})
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


def _evaluate(client: TestClient, context: dict[str, Any]) -> tuple[str, str]:
    r = client.post(
        f"/api/v1/projects/{P}/environments/{ENV}/evaluate",
        json={"flag": "checkout", "context": context},
    )
    assert r.status_code == 200, r.text
    return r.json()["variation"], r.json()["reason"]


def _firing() -> dict[str, Any]:
    body = copy.deepcopy(NOTIFICATION)
    body["alerts"] = body["alerts"][:1]
    return body


def test_a_trigger_is_created_listed_and_its_secret_shown_once(
    client: TestClient, admin: Admin
) -> None:
    created = _create(client, name="errors page", reason="on-call")
    assert created["id"].startswith("at_")
    assert created["url_path"] == f"/hooks/alerts/{created['id']}/{created['secret']}"
    listed = client.get(TRIGGERS).json()
    assert listed["total"] == 1
    (item,) = listed["items"]
    assert "secret" not in item
    assert "url_path" not in item
    assert item == client.get(f"{TRIGGERS}/{created['id']}").json()
    assert (item["name"], item["action"], item["flag"]) == ("errors page", "kill", "checkout")
    entry = client.get("/api/v1/audit", params={"action": "alert_trigger:created"}).json()
    assert created["secret"] not in str(entry)
    assert entry["items"][0]["object_key"] == created["id"]


def test_a_firing_alert_kills_once_and_the_audit_entry_carries_it(
    client: TestClient, admin: Admin, anonymous: TestClient
) -> None:
    created = _create(client)
    r = anonymous.post(created["url_path"], json=_firing())
    assert r.status_code == 200, r.text
    (outcome,) = r.json()["alerts"]
    assert (outcome["outcome"], outcome["alertname"]) == ("applied", "CheckoutErrors")
    assert _evaluate(client, {"key": "u1"}) == ("off", "KILLED")
    entry = client.get("/api/v1/audit", params={"action": "flag:killed"}).json()["items"][0]
    assert entry["actor_type"] == "system"
    assert entry["actor_name"] == f"alert-trigger:{created['id']}"
    alert = entry["refs"]["alert"]
    assert alert["alertname"] == "CheckoutErrors"
    assert alert["fingerprint"] == "c8f4a2b1e9d07f13"
    assert alert["startsAt"] == "2026-12-05T10:40:00.000Z"
    assert alert["labels"]["region"] == "eu"
    assert entry["evidence"]["policy"]["outcome"] == "apply"
    # Alertmanager repeats the notification: nothing is applied again
    again = anonymous.post(created["url_path"], json=_firing()).json()["alerts"][0]
    assert again["outcome"] == "already_fired"
    kills = client.get("/api/v1/audit", params={"action": "flag:killed"}).json()["items"]
    assert len(kills) == 1


def test_a_resolved_alert_never_re_expands(
    client: TestClient, admin: Admin, anonymous: TestClient
) -> None:
    created = _create(client, action="fallback")
    anonymous.post(created["url_path"], json=_firing())
    assert _evaluate(client, {"key": "u1"}) == ("off", "OFF")
    resolved = _firing()
    resolved["status"] = "resolved"
    resolved["alerts"][0]["status"] = "resolved"
    r = anonymous.post(created["url_path"], json=resolved)
    assert r.status_code == 200, r.text
    assert r.json()["alerts"][0]["outcome"] == "ignored"
    assert _evaluate(client, {"key": "u1"}) == ("off", "OFF")


def test_an_exclude_trigger_sends_one_audience_to_the_fallback(
    client: TestClient, admin: Admin, anonymous: TestClient
) -> None:
    created = _create(client, action="exclude", audience="region:eu")
    r = anonymous.post(created["url_path"], json=_firing())
    assert r.json()["alerts"][0]["outcome"] == "applied", r.text
    assert _evaluate(client, {"key": "u1", "region": "eu"}) == ("off", "EXCLUDED")
    assert _evaluate(client, {"key": "u1", "region": "us"}) == ("on", "FALLTHROUGH")
    later = _firing()
    later["alerts"][0]["startsAt"] = "2026-12-05T11:40:00.000Z"  # a new episode
    outcome = anonymous.post(created["url_path"], json=later).json()["alerts"][0]
    assert outcome["outcome"] == "unchanged"


@pytest.mark.parametrize(
    "path",
    [
        lambda t: f"/hooks/alerts/{t['id']}/wrong-secret",
        lambda t: f"/hooks/alerts/at_0000000000000000/{t['secret']}",
        lambda t: f"/hooks/alerts/nonsense/{t['secret']}",
    ],
)
def test_a_bad_secret_or_unknown_trigger_is_refused_and_changes_nothing(
    client: TestClient, admin: Admin, anonymous: TestClient, path: Any
) -> None:
    created = _create(client)
    r = anonymous.post(path(created), json={"alerts": "not even a list"})
    assert r.status_code == 401, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert _evaluate(client, {"key": "u1"}) == ("on", "FALLTHROUGH")


def test_a_deleted_trigger_stops_working(
    client: TestClient, admin: Admin, anonymous: TestClient
) -> None:
    created = _create(client)
    r = client.delete(f"{TRIGGERS}/{created['id']}", headers={"X-Lockgate-Reason": "retired"})
    assert r.status_code == 204, r.text
    assert anonymous.post(created["url_path"], json=_firing()).status_code == 401
    assert client.get(f"{TRIGGERS}/{created['id']}").status_code == 404
    entry = client.get("/api/v1/audit", params={"action": "alert_trigger:deleted"}).json()
    assert entry["items"][0]["reason"] == "retired"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"action": "explode"}, "action"),
        ({"action": "pause_rollout", "audience": "region:eu"}, "audience"),
        ({"action": "exclude"}, "audience"),
        ({"action": "exclude", "audience": "nonsense"}, "audience"),
        ({"action": "kill", "audience": "region:eu"}, "audience"),
        ({"flag": "no spaces"}, "flag"),
        ({"name": "x" * 201}, "name"),
    ],
)
def test_bad_triggers_are_refused_naming_the_field(
    client: TestClient, admin: Admin, body: dict[str, Any], field: str
) -> None:
    r = client.post(TRIGGERS, json={"flag": "checkout", "action": "kill", **body})
    assert r.status_code == 422, r.text
    assert field in [e["field"] for e in r.json()["errors"]]
    assert client.get(TRIGGERS).json()["total"] == 0


def test_a_trigger_for_a_missing_flag_is_404(client: TestClient, admin: Admin) -> None:
    r = client.post(TRIGGERS, json={"flag": "nope", "action": "kill"})
    assert r.status_code == 404, r.text


def test_a_body_that_is_not_alertmanagers_is_422(
    client: TestClient, admin: Admin, anonymous: TestClient
) -> None:
    created = _create(client)
    r = anonymous.post(created["url_path"], json={"alerts": [{"status": "pending"}]})
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "alerts[0].status"
    assert _evaluate(client, {"key": "u1"}) == ("on", "FALLTHROUGH")


def test_sdk_keys_cannot_manage_triggers(
    client: TestClient, admin: Admin, services: Services
) -> None:
    key = admin.sdk_key(P, ENV, "server")[0]
    assert client.get(TRIGGERS, headers=bearer(key)).status_code == 401


def test_a_firing_alert_pauses_the_staged_rollout_once(
    client: TestClient, admin: Admin, anonymous: TestClient
) -> None:
    created = _create(client, action="pause_rollout")
    refused = anonymous.post(created["url_path"], json=_firing()).json()
    (outcome,) = refused["alerts"]  # no plan yet: nothing to pause, the claim is given back
    assert outcome["outcome"] == "refused"
    assert "no rollout plan" in outcome["detail"]
    plan = {"variation": "on", "stable": "off", "stages": [{"percent": 5}, {"percent": 100}]}
    assert client.put(f"{FLAG}/rollout", json=plan).status_code == 200
    r = anonymous.post(created["url_path"], json=_firing())
    assert r.status_code == 200, r.text
    (outcome,) = r.json()["alerts"]
    assert outcome["outcome"] == "applied", outcome
    assert client.get(f"{FLAG}/rollout").json()["status"] == "paused"
    entries = client.get("/api/v1/audit", params={"action": "rollout_plan:paused"}).json()
    (entry,) = entries["items"]
    assert (entry["actor_type"], entry["actor_name"]) == (
        "system",
        f"alert-trigger:{created['id']}",
    )
    assert entry["refs"]["alert"]["alertname"] == "CheckoutErrors"
    (again,) = anonymous.post(created["url_path"], json=_firing()).json()["alerts"]
    assert again["outcome"] == "already_fired"
    resolved = _firing()
    resolved["alerts"][0]["status"] = "resolved"
    (ignored,) = anonymous.post(created["url_path"], json=resolved).json()["alerts"]
    assert ignored["outcome"] == "ignored"
    assert client.get(f"{FLAG}/rollout").json()["status"] == "paused"  # never resumed by itself


def test_a_fired_reduction_is_an_automatic_action_for_subscribers(
    client: TestClient, admin: Admin, anonymous: TestClient, services: Services
) -> None:
    import dataclasses

    from sqlalchemy import select

    from lockgate.control.base import system_caller
    from lockgate.control.evidence import webhooks
    from lockgate.store.tables import webhook_deliveries

    services.webhooks = dataclasses.replace(services.webhooks, allow_private_targets=True)
    webhooks.create_webhook(
        services, system_caller("test-admin"), P,
        {"key": "ops", "url": "http://127.0.0.1:9/hook", "event_types": ["automatic.action"]},
    )  # fmt: skip
    created = _create(client)
    assert anonymous.post(created["url_path"], json=_firing()).status_code == 200
    with services.view() as conn:
        rows = conn.execute(select(webhook_deliveries)).all()
    (row,) = rows
    assert row.event_type == "automatic.action"
    assert row.data["actor"] == f"alert-trigger:{created['id']}"
    assert row.data["action"] == "flag:killed"
    assert row.data["refs"]["alert"]["alertname"] == "CheckoutErrors"
