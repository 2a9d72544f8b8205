"""A PATCH that changes nothing is not a write: the unchanged resource answers, with its
version, and nothing is stored — no audit entry, no new snapshot for the SDKs."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

P = "/api/v1/projects/shop"


@pytest.fixture
def shop(client: TestClient) -> TestClient:
    for path, body in (
        ("/api/v1/projects", {"key": "shop", "name": "Shop"}),
        (f"{P}/environments", {"key": "production", "name": "Production"}),
        (f"{P}/flags", {"key": "agent", "kind": "mode", "name": "Agent"}),
        (f"{P}/segments", {"key": "beta", "name": "Beta", "included": ["u1"]}),
        ("/api/v1/users", {"username": "bob", "display_name": "Bob", "password": "a-long-pass-1"}),
    ):
        answer = client.post(path, json=body)
        assert answer.status_code == 201, answer.text
    return client


def _audit_head(client: TestClient) -> int:
    items = client.get("/api/v1/audit", params={"limit": 1}).json()["items"]
    return int(items[0]["seq"])


def _snapshot_version(client: TestClient) -> int:
    return int(client.get(f"{P}/environments/production/snapshot").json()["version"])


@pytest.mark.parametrize(
    ("path", "same"),
    [
        (P, {"name": "Shop"}),
        (f"{P}/environments/production", {"name": "Production"}),
        (f"{P}/flags/agent", {"name": "Agent", "tags": []}),
        (f"{P}/flags/agent/environments/production", {"on": False, "rules": []}),
        (f"{P}/segments/beta", {"included": ["u1"]}),
        ("/api/v1/users/bob", {"display_name": "Bob", "disabled": False}),
    ],
)
def test_a_patch_that_changes_nothing_writes_nothing(
    shop: TestClient, path: str, same: dict[str, Any]
) -> None:
    current = shop.get(path)
    assert current.status_code == 200, current.text
    head, snapshot = _audit_head(shop), _snapshot_version(shop)
    for body in ({}, same):
        answer = shop.patch(path, json=body, headers={"If-Match": current.headers["ETag"]})
        assert answer.status_code == 200, answer.text
        assert answer.headers["ETag"] == current.headers["ETag"]
        assert answer.json()["version"] == current.json()["version"]
    assert _audit_head(shop) == head
    assert _snapshot_version(shop) == snapshot
