"""Numbers and dates at the edges of their ranges: 422 naming the field, never a 500."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

P = "/api/v1/projects/shop"
FLAG = f"{P}/flags/agent"
CONFIG = f"{FLAG}/environments/production"


@pytest.fixture
def shop(client: TestClient) -> TestClient:
    assert client.post("/api/v1/projects", json={"key": "shop"}).status_code == 201
    r = client.post(f"{P}/environments", json={"key": "production"})
    assert r.status_code == 201
    assert client.post(f"{P}/flags", json={"key": "agent", "kind": "boolean"}).status_code == 201
    return client


def _fields(response: Any) -> list[str]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return [e["field"] for e in response.json()["errors"]]


@pytest.mark.parametrize(
    "version", ['"2147483648"', '"999999999999"', '"99999999999999999999"', '"-1"']
)
def test_if_match_beyond_the_version_range_is_422(shop: TestClient, version: str) -> None:
    for method, path, body in [
        ("PATCH", CONFIG, {"on": True}),
        ("PATCH", FLAG, {"name": "Agent"}),
        ("PATCH", P, {"name": "Shop"}),
    ]:
        r = shop.request(method, path, json=body, headers={"If-Match": version})
        assert _fields(r) == ["If-Match"], (method, path)


def test_the_largest_version_is_a_stale_version_not_an_error(shop: TestClient) -> None:
    r = shop.patch(CONFIG, json={"on": True}, headers={"If-Match": '"2147483647"'})
    assert r.status_code == 409


@pytest.mark.parametrize("to_version", [2**31, 2**63, 10**30, 0, -5])
def test_revert_to_a_version_out_of_range_is_422(shop: TestClient, to_version: int) -> None:
    body = {"to_version": to_version, "reason": "back"}
    r = shop.post(f"{CONFIG}/revert", json=body, headers={"If-Match": '"1"'})
    assert _fields(r) == ["to_version"]


@pytest.mark.parametrize("after", ["2147483648", str(2**62), "-1"])
def test_audit_after_beyond_the_sequence_range_is_422(client: TestClient, after: str) -> None:
    r = client.get("/api/v1/audit", params={"after_seq": after})
    assert _fields(r) == ["after_seq"]


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59-23:59"])
def test_audit_times_past_the_calendar_are_422(client: TestClient, moment: str) -> None:
    for field in ("since", "until"):
        assert _fields(client.get("/api/v1/audit", params={field: moment})) == [field]
