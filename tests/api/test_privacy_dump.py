"""A private attribute's value appears in no stored row and no export (docs/privacy.md).

A real SDK client talks to the app under uvicorn (SQLite and PostgreSQL): a killed
behavior's fallback is evaluated for a context holding private values, and so are a
record from a foreign client that sends them as they are and a runtime approval request.
Then the whole database is dumped — SQLite's ``iterdump()``, every row of every table as
text on PostgreSQL — and scanned, with the JSONL exports.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import uvicorn

from lockgate.api.app import create_app
from lockgate.control.base import Services
from lockgate.control.identity.bootstrap import ensure_admin
from lockgate.engine.result import Reason
from lockgate.sdk import Client
from lockgate.settings import Settings
from tests.api.helpers import bearer
from tests.delivery.servers import Admin
from tests.sdk.test_sync_live import TUNING

P, ENV = "shop", "prod"
FLAG = f"/api/v1/projects/{P}/flags/agent"
DECISIONS = f"/api/v1/projects/{P}/environments/{ENV}/decisions"
SECRETS = {
    "email": "jane.private@example.org",  # the environment's private attribute
    "phone": "+49-170-5550199",  # the SDK's private attribute
    "ip": "203.0.113.77",  # hashed by the environment's rule
    "ssn": "078-05-1120",  # dropped by the environment's rule
}


@pytest.fixture
def live(settings: Settings, services: Services) -> Iterator[tuple[str, str]]:
    """The app under uvicorn in a thread: its URL and an admin token."""
    token = ensure_admin(services).token
    assert token is not None
    config = uvicorn.Config(
        create_app(settings, services),
        host="127.0.0.1",
        port=0,
        log_level="warning",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", token
    finally:
        server.should_exit = True
        thread.join(10)


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response


def _dump(services: Services) -> str:
    database = services.database
    if database.is_sqlite:
        path = database.engine.url.database
        assert path
        with sqlite3.connect(path) as conn:
            return "\n".join(conn.iterdump())
    lines: list[str] = []
    with database.engine.connect() as conn:
        for table in sa.inspect(conn).get_table_names():
            rows = conn.execute(sa.text(f'SELECT CAST(t AS text) FROM "{table}" AS t')).scalars()
            lines.extend(rows)
    return "\n".join(lines)


def _context(sdk_private: bool = True) -> dict[str, Any]:
    """A context holding the secrets; without the SDK's own private attribute when it is
    sent by something else (the environment's rules alone apply there)."""
    secrets = {k: v for k, v in SECRETS.items() if sdk_private or k != "phone"}
    return {"key": "subject-1", "plan": "pro", **secrets}


def test_a_private_value_is_in_no_row_and_no_export(
    live: tuple[str, str], services: Services
) -> None:
    url, token = live
    with httpx.Client(base_url=url, headers=bearer(token), timeout=10.0) as http:
        admin = Admin(http)
        admin.project(P, ENV)
        admin.flag(P, "agent", kind="mode")
        admin.configure(P, "agent", ENV, on=True, default={"variation": "full"})
        etag = _ok(http.get(f"/api/v1/projects/{P}/environments/{ENV}")).headers["etag"]
        privacy = {"private_attributes": ["email"], "rules": {"ip": "hash", "ssn": "drop"}}
        _ok(
            http.patch(
                f"/api/v1/projects/{P}/environments/{ENV}",
                json={"privacy": privacy},
                headers={"If-Match": etag},
            )
        )
        _ok(http.post(f"{FLAG}/kill", json={"environments": [ENV], "reason": "errors"}))
        key, _ = admin.sdk_key(P, ENV)

        with Client(key, url, tuning=TUNING, private_attributes=["phone"]) as client:
            assert client.wait_until_ready(20)
            deadline = time.monotonic() + 10
            while client.mode_detail("agent", _context()).reason is not Reason.KILLED:
                assert time.monotonic() < deadline, "the kill never reached the SDK"
                time.sleep(0.05)
            assert client.flush_decisions(5.0)

        foreign = {
            "kind": "denied",
            "flag": "agent",
            "variation": "off",
            "reason": "RULE_MATCH",
            "context": _context(sdk_private=False),
            "at": "2026-12-05T10:00:00Z",
        }
        _ok(http.post("/sdk/v1/decisions", json={"records": [foreign]}, headers=bearer(key)), 202)
        ask = {"behavior": "agent", "action": "refund", "summary": "s", "context": _context(False)}
        _ok(http.post("/sdk/v1/approvals", json=ask, headers=bearer(key)), 201)

        items = _ok(http.get(DECISIONS)).json()["items"]
        kinds = sorted(item["kind"] for item in items)
        assert kinds[:1] == ["denied"]
        assert "kill_fallback" in kinds  # the SDK's record of the kill's fallback
        from_sdk = next(item for item in items if item["kind"] == "kill_fallback")
        assert from_sdk["reason"] == "KILLED"
        assert from_sdk["redacted"] == ["email", "phone", "ssn"]
        assert from_sdk["context"]["ip"].startswith("hmac:")
        assert from_sdk["context"]["plan"] == "pro"
        exports = _ok(http.get(f"{DECISIONS}/export")).text
        subject = f"/api/v1/projects/{P}/subjects/export"
        exports += _ok(http.post(subject, json={"key": "subject-1"})).text
        assert exports.count("\n") >= 4

    dump = _dump(services)
    assert "subject-1" in dump  # the dump holds the records (the key is not private)
    for name, value in SECRETS.items():
        assert value not in dump, f"{name} is in the database"
        assert value not in exports, f"{name} is in an export"
