"""Webhook subscriptions over the API: validation, refusal of private targets at creation,
the governed and audited writes, secrets shown once. SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

HOOKS = "/api/v1/projects/shop/webhooks"
PUBLIC = "https://93.184.215.14/hooks"  # a public address: nothing is sent in these tests


@pytest.fixture
def shop(client: TestClient) -> TestClient:
    client.post("/api/v1/projects", json={"key": "shop"})
    client.post("/api/v1/projects/shop/environments", json={"key": "production"})
    return client


def _create(client: TestClient, **fields: Any) -> Any:
    body = {"key": "ops", "url": PUBLIC, "event_types": ["behavior.changed"], **fields}
    return client.post(HOOKS, json=body)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://10.0.0.7/hook",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[fe80::1]/",
        "http://0.0.0.0/",
        "http://localhost/hook",  # a name resolving to a loopback address
    ],
)
def test_private_targets_are_refused_at_creation(shop: TestClient, url: str) -> None:
    response = _create(shop, url=url)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    [problem] = response.json()["errors"]
    assert problem["field"] == "url"
    assert "refused" in problem["message"]
    assert shop.get(HOOKS).json()["items"] == []


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"url": "ftp://93.184.215.14/"}, "url"),
        ({"url": "http://no-such-host.invalid/"}, "url"),
        ({"event_types": ["no.such"]}, "event_types[0]"),
        ({"environments": ["nowhere"]}, "environments[0]"),
    ],
    ids=["scheme", "unresolvable", "event-type", "environment"],
)
def test_bad_fields_are_named(shop: TestClient, fields: dict[str, Any], field: str) -> None:
    response = _create(shop, **fields)
    assert response.status_code == 422, response.text
    assert [p["field"] for p in response.json()["errors"]] == [field]


def test_the_secret_is_shown_once_and_never_audited(shop: TestClient) -> None:
    created = _create(shop, environments=["production"])
    assert created.status_code == 201, created.text
    secret = created.json()["secret"]
    assert secret.startswith("whsec_")
    assert "secret" not in shop.get(f"{HOOKS}/ops").json()
    assert "secret" not in shop.get(HOOKS).json()["items"][0]
    rotated = shop.post(f"{HOOKS}/ops/rotate-secret", json={"reason": "leak drill"}).json()
    assert rotated["secret"] not in (secret, None)
    assert rotated["previous_secret_expires_at"] is not None
    log = shop.get("/api/v1/audit", params={"object_type": "webhook"}).text
    assert secret not in log
    assert rotated["secret"] not in log


def test_writes_are_governed_and_audited(shop: TestClient) -> None:
    plan = shop.post(
        HOOKS + "?plan=true",
        json={"key": "ops", "url": PUBLIC, "event_types": ["*"]},
    )
    assert plan.status_code == 200
    assert plan.json()["plan"]["decision"]["outcome"] == "apply"
    assert shop.get(HOOKS).json()["items"] == []
    assert _create(shop).status_code == 201
    changed = shop.patch(
        f"{HOOKS}/ops",
        json={"event_types": ["*"], "enabled": False, "reason": "quiet"},
        headers={"If-Match": '"1"'},
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["enabled"], changed.json()["version"]) == (False, 2)
    stale = shop.patch(f"{HOOKS}/ops", json={"enabled": True}, headers={"If-Match": '"1"'})
    assert stale.status_code == 409
    deleted = shop.delete(f"{HOOKS}/ops", headers={"If-Match": '"2"'})
    assert deleted.status_code == 204
    assert shop.get(f"{HOOKS}/ops").status_code == 404
    entries = shop.get("/api/v1/audit", params={"object_type": "webhook"}).json()["items"]
    assert sorted(e["action"] for e in entries) == [
        "webhook:created",
        "webhook:deleted",
        "webhook:updated",
    ]


def test_a_duplicate_key_conflicts(shop: TestClient) -> None:
    assert _create(shop).status_code == 201
    assert _create(shop).status_code == 409
