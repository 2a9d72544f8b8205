"""Webhook delivery to a real receiver process on 127.0.0.1 that verifies every request with
``standardwebhooks``: delivery, retries, Retry-After, 410, replay, rotation, ordering, and
the refusal of private targets at send time and of redirects. SQLite and PostgreSQL.

The dispatcher is driven by hand (``run_once``) with the services' clock moved forward, so
retries are checked exactly rather than waited for.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from lockgate.cli.main import main as cli_main
from lockgate.control.base import Services
from lockgate.control.evidence import webhook_outbox
from lockgate.delivery.webhooks import WebhookDispatcher, WebhookSender
from lockgate.events.catalog import EventType
from lockgate.settings import Settings
from lockgate.store.checkpoints import load_public_key, verify_checkpoint
from lockgate.store.tables import audit_checkpoints, webhook_deliveries
from tests.api.helpers import bearer
from tests.delivery.webhook_receivers import Receiver, receiver

HOOKS = "/api/v1/projects/shop/webhooks"
FLAG = "/api/v1/projects/shop/flags/agent/environments/production"


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.with_overrides(
        webhook_allow_private_targets=True,
        webhook_backoff_seconds=10,
        webhook_max_backoff_seconds=10,
        webhook_max_attempts=3,
        webhook_secret_overlap_hours=1,
    )


@pytest.fixture
def clock(services: Services) -> Clock:
    moving = Clock()
    services.clock = moving
    return moving


@pytest.fixture
def api(app: FastAPI, admin_token: str) -> TestClient:
    """The API without the app's own background loops: the tests send by hand."""
    http = TestClient(app, headers=bearer(admin_token))
    assert http.post("/api/v1/projects", json={"key": "shop"}).status_code == 201
    http.post("/api/v1/projects/shop/environments", json={"key": "staging"})
    http.post("/api/v1/projects/shop/environments", json={"key": "production"})
    http.post("/api/v1/projects/shop/flags", json={"key": "agent", "kind": "boolean"})
    return http


@pytest.fixture
def hook(tmp_path: Path) -> Iterator[Receiver]:
    with receiver(tmp_path / "receiver") as running:
        yield running


def subscribe(api: TestClient, hook: Receiver, key: str = "ops", **fields: Any) -> dict[str, Any]:
    body = {"key": key, "url": hook.url, "event_types": ["*"], **fields}
    response = api.post(HOOKS, json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    hook.trust([created["secret"]])
    return created


def toggle(api: TestClient, on: bool) -> None:
    version = api.get(FLAG).headers["etag"]
    response = api.patch(FLAG, json={"on": on}, headers={"If-Match": version})
    assert response.status_code == 200, response.text


def send(services: Services, *, allow_private: bool = True) -> int:
    policy = replace(services.webhooks, allow_private_targets=allow_private)
    sender = WebhookSender(policy)
    try:
        return WebhookDispatcher(services, sender).run_once()
    finally:
        sender.close()


def deliveries(api: TestClient, key: str = "ops", state: str = "") -> list[dict[str, Any]]:
    query = f"?state={state}" if state else ""
    items: list[dict[str, Any]] = api.get(f"{HOOKS}/{key}/deliveries{query}").json()["items"]
    return items


def test_a_change_reaches_the_receiver_signed(
    api: TestClient, hook: Receiver, clock: Clock
) -> None:
    subscribe(api, hook, environments=["production"])
    toggle(api, True)
    assert send(api.app.state.services) == 1  # type: ignore[attr-defined]
    [request] = hook.requests()
    assert request["verified"] == [True]
    payload = json.loads(request["body"])
    assert payload["type"] == "behavior.changed"
    assert payload["version"] == 1
    data = payload["data"]
    assert (data["project"], data["environment"], data["action"]) == (
        "shop",
        "production",
        "flag:configured",
    )
    assert data["object"] == {"type": "flag", "key": "agent"}
    assert data["after"]["on"] is True
    assert request["headers"]["webhook-id"] == "evt_" + data["audit"]["id"].replace("-", "")
    assert [d["state"] for d in deliveries(api)] == ["delivered"]


def test_nothing_is_queued_without_a_matching_subscription(
    api: TestClient, hook: Receiver, services: Services, clock: Clock
) -> None:
    subscribe(api, hook, environments=["staging"])
    subscribe(api, hook, key="approvals", event_types=["change_request.created"])
    toggle(api, True)  # production, behavior.changed: neither subscription routes it
    with services.view() as conn:
        assert conn.execute(select(func.count()).select_from(webhook_deliveries)).scalar() == 0
    assert send(services) == 0


def test_a_500_is_retried_after_the_backoff_with_the_same_id(
    api: TestClient, hook: Receiver, services: Services, clock: Clock
) -> None:
    subscribe(api, hook)
    hook.answer({"status": 500})
    toggle(api, True)
    assert send(services) == 1
    [pending] = deliveries(api)
    assert (pending["state"], pending["attempts"], pending["last_status"]) == ("pending", 1, 500)
    clock.advance(10)  # the backoff's ceiling: full jitter waits at most this long
    assert send(services) == 1
    first, second = hook.requests()
    assert first["headers"]["webhook-id"] == second["headers"]["webhook-id"]
    assert second["verified"] == [True]
    assert deliveries(api)[0]["state"] == "delivered"


@pytest.mark.parametrize("retry_after", ["120", "HTTP-DATE"], ids=["seconds", "http-date"])
def test_retry_after_is_honoured(
    api: TestClient, hook: Receiver, services: Services, clock: Clock, retry_after: str
) -> None:
    if retry_after == "HTTP-DATE":
        from email.utils import format_datetime

        retry_after = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    subscribe(api, hook)
    hook.answer({"status": 429, "headers": {"Retry-After": retry_after}})
    toggle(api, True)
    assert send(services) == 1
    clock.advance(100)
    assert send(services) == 0  # still waiting: the endpoint asked for two minutes
    clock.advance(30)
    assert send(services) == 1
    assert [r["answered"] for r in hook.requests()] == [429, 204]


def test_410_disables_the_subscription_audited(
    api: TestClient, hook: Receiver, services: Services, clock: Clock
) -> None:
    subscribe(api, hook)
    hook.answer({"status": 410})
    toggle(api, True)
    assert send(services) == 1
    view = api.get(f"{HOOKS}/ops").json()
    assert view["enabled"] is False
    assert "410" in view["disabled_reason"]
    assert [d["state"] for d in deliveries(api)] == ["failed"]
    entries = api.get("/api/v1/audit", params={"action": "webhook:disabled"}).json()["items"]
    assert [(e["actor_id"], e["object_key"]) for e in entries] == [("webhook-delivery", "ops")]
    toggle(api, False)
    clock.advance(60)
    assert send(services) == 0
    assert len(hook.requests()) == 1


def test_failed_deliveries_are_listed_and_replayed(
    api: TestClient, hook: Receiver, services: Services, clock: Clock
) -> None:
    subscribe(api, hook)
    hook.answer({"status": 500}, {"status": 502}, {"status": 503})
    toggle(api, True)
    for _ in range(3):
        assert send(services) == 1
        clock.advance(10)
    [failed] = deliveries(api, state="failed")
    assert (failed["attempts"], failed["last_status"]) == (3, 503)
    response = api.post(f"{HOOKS}/ops/deliveries/{failed['id']}/replay", json={"reason": "fixed"})
    assert response.status_code == 200, response.text
    assert response.json() == {"replayed": 1, "deliveries": [failed["id"]]}
    assert send(services) == 1
    assert deliveries(api, state="failed") == []
    assert [r["answered"] for r in hook.requests()] == [500, 502, 503, 204]
    again = api.post(f"{HOOKS}/ops/deliveries/{failed['id']}/replay", json={})
    assert again.status_code == 409


def test_replay_all_failed(
    api: TestClient, hook: Receiver, services: Services, clock: Clock
) -> None:
    subscribe(api, hook)
    api.patch(f"{HOOKS}/ops", json={"url": hook.url + "x"}, headers={"If-Match": '"1"'})
    hook.answer(*[{"status": 500}] * 6)
    toggle(api, True)
    toggle(api, False)
    for _ in range(6):
        send(services)
        clock.advance(10)
    assert len(deliveries(api, state="failed")) == 2
    response = api.post(f"{HOOKS}/ops/replay-failed", json={})
    assert response.json()["replayed"] == 2
    assert send(services) == 1  # one at a time, in order
    assert send(services) == 1
    assert [d["state"] for d in deliveries(api)] == ["delivered", "delivered"]


def test_a_later_event_waits_for_an_earlier_one(
    api: TestClient, hook: Receiver, services: Services, clock: Clock
) -> None:
    subscribe(api, hook)
    hook.answer({"status": 500})
    toggle(api, True)
    toggle(api, False)
    assert send(services) == 1  # only the first event: it fails
    clock.advance(10)
    assert send(services) == 1
    assert send(services) == 1
    ons = [json.loads(r["body"])["data"]["after"]["on"] for r in hook.requests()]
    assert ons == [True, True, False]


def test_a_rotated_secret_signs_beside_the_new_one_until_the_overlap_ends(
    api: TestClient, hook: Receiver, services: Services, clock: Clock
) -> None:
    old = subscribe(api, hook)["secret"]
    rotated = api.post(f"{HOOKS}/ops/rotate-secret", json={"reason": "yearly"})
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["secret"]
    assert new != old
    assert "secret" not in api.get(f"{HOOKS}/ops").json()
    hook.trust([old, new])
    toggle(api, True)
    send(services)
    clock.advance(3601)  # the overlap (one hour here) is over
    toggle(api, False)
    send(services)
    during, after = hook.requests()
    assert during["verified"] == [True, True]
    assert len(during["headers"]["webhook-signature"].split(" ")) == 2
    assert after["verified"] == [False, True]


def test_an_emitted_event_is_delivered(api: TestClient, hook: Receiver, services: Services) -> None:
    subscribe(api, hook, event_types=["guardrail.breached"], environments=["production"])
    with services.change() as tx:
        queued = webhook_outbox.emit(
            tx,
            EventType.GUARDRAIL_BREACHED,
            "shop",
            {"guardrail": "error-rate", "value": 0.2, "threshold": 0.05},
            environment="production",
        )
    assert queued == 1
    assert send(services) == 1
    [payload] = hook.payloads()
    assert payload["type"] == "guardrail.breached"
    assert payload["data"]["guardrail"] == "error-rate"
    assert payload["data"]["environment"] == "production"


def test_a_private_target_is_refused_at_send_time(
    api: TestClient, hook: Receiver, services: Services
) -> None:
    subscribe(api, hook)  # allowed when it was created (local development) ...
    toggle(api, True)
    assert send(services, allow_private=False) == 1  # ... but no longer
    assert hook.requests() == []
    [pending] = deliveries(api)
    assert pending["last_status"] is None
    assert "loopback" in pending["last_error"]


def test_a_redirect_is_not_followed(
    api: TestClient, hook: Receiver, services: Services, tmp_path: Path
) -> None:
    with receiver(tmp_path / "elsewhere") as elsewhere:
        subscribe(api, hook)
        hook.answer({"status": 307, "headers": {"Location": elsewhere.url}})
        toggle(api, True)
        assert send(services) == 1
        assert elsewhere.requests() == []
    assert [r["answered"] for r in hook.requests()] == [307]
    assert deliveries(api)[0]["last_status"] == 307


def test_each_checkpoint_reaches_every_subscription_as_an_anchor(
    api: TestClient,
    hook: Receiver,
    services: Services,
    settings: Settings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert services.signer is not None
    services.checkpoint_every = 3
    first = subscribe(api, hook, event_types=["audit.checkpoint"], environments=["production"])
    assert api.post("/api/v1/projects", json={"key": "lab"}).status_code == 201
    other = api.post(
        "/api/v1/projects/lab/webhooks",
        json={
            "key": "all",
            "url": hook.url,
            "event_types": ["audit.checkpoint", "incident.started"],
        },
    )
    assert other.status_code == 201, other.text
    hook.trust([first["secret"], other.json()["secret"]])
    with services.view() as conn:
        since = conn.execute(select(func.max(audit_checkpoints.c.seq))).scalar() or 0
    for on in (True, False, True, False, True, False):
        toggle(api, on)
    with services.view() as conn:
        stored = conn.execute(
            select(audit_checkpoints.c.seq, audit_checkpoints.c.hash)
            .where(audit_checkpoints.c.seq > since)
            .order_by(audit_checkpoints.c.seq)
        ).all()
    assert len(stored) == 2
    while send(services):
        pass

    requests = hook.requests()
    assert requests
    assert all(sum(r["verified"]) == 1 for r in requests)  # one secret each
    anchors = [p["data"] for p in map(json.loads, (r["body"] for r in requests))
               if p["type"] == "audit.checkpoint"]  # fmt: skip
    # both subscriptions (one per project) got every checkpoint
    seen = sorted((a["seq"], a["hash"]) for a in anchors if a["seq"] > since)
    assert seen == sorted([(row.seq, row.hash) for row in stored] * 2)
    anchors = sorted((a for a in anchors if a["seq"] > since), key=lambda a: int(a["seq"]))[::2]
    assert "project" not in anchors[0]
    key = load_public_key(anchors[0]["public_key_pem"])
    assert all(
        verify_checkpoint(key, a["seq"], a["hash"], a["ts"], a["signature"]) for a in anchors
    )

    anchor_file = tmp_path / "anchors.jsonl"
    anchor_file.write_text("".join(json.dumps(a) + "\n" for a in anchors))
    where = (
        ["--database-url", settings.database_url]
        if settings.database_url
        else ["--data-dir", str(settings.data_dir)]
    )
    verify = ["audit", "verify", *where]
    assert cli_main([*verify, "--anchors", str(anchor_file)]) == 0
    assert "intact" in capsys.readouterr().out

    forged = dict(anchors[0], hash="0" * 64)
    anchor_file.write_text(json.dumps(forged) + "\n")
    assert cli_main([*verify, "--anchors", str(anchor_file)]) == 4


def test_a_subscription_to_everything_gets_no_checkpoints(
    api: TestClient, hook: Receiver, services: Services
) -> None:
    services.checkpoint_every = 1
    subscribe(api, hook)  # "*": every event of the project, not the installation's chain
    toggle(api, True)
    while send(services):
        pass
    assert [p["type"] for p in hook.payloads()] == ["behavior.changed"]
