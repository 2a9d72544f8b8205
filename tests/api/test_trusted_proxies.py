"""Behind a reverse proxy: the forwarded client address counts only from trusted proxies."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from lockgate.api.app import create_app
from lockgate.control.base import Services
from lockgate.settings import Settings, SettingsError, load_settings
from tests.api.identity_helpers import (
    PASSWORD,
    audit_rows,
    bearer,
    make_user,
    use_cheap_hashing,
)

FORWARDED = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}


@pytest.fixture(autouse=True)
def _cheap_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    use_cheap_hashing(monkeypatch)


@pytest.mark.parametrize(
    ("trusted", "peer", "recorded"),
    [
        ("10.0.0.0/8", "10.1.2.3", "203.0.113.7"),
        ("10.0.0.0/8, 192.0.2.1", "192.0.2.1", "203.0.113.7"),
        ("10.0.0.0/8", "198.51.100.4", "198.51.100.4"),
        ("", "10.1.2.3", "10.1.2.3"),
    ],
    ids=["trusted-network", "trusted-address", "untrusted-peer", "none-trusted"],
)
def test_the_login_records_the_forwarded_address_only_from_a_trusted_proxy(
    settings: Settings,
    services: Services,
    admin_token: str,
    trusted: str,
    peer: str,
    recorded: str,
) -> None:
    app = create_app(settings.with_overrides(trusted_proxies=trusted), services)
    make_user(TestClient(app, headers=bearer(admin_token)), "alice")
    http = TestClient(app, client=(peer, 40000))
    body = {"username": "alice", "password": PASSWORD}
    assert http.post("/api/v1/auth/login", json=body, headers=FORWARDED).status_code == 200
    entry = audit_rows(services, "auth:login")[-1]
    assert entry["evidence"]["client_address"] == recorded


def test_a_trusted_proxy_setting_that_is_not_an_address_is_refused() -> None:
    with pytest.raises(SettingsError, match=r"trusted_proxies: 'proxy\.internal' is not an IP"):
        load_settings(environ={"LOCKGATE_TRUSTED_PROXIES": "10.0.0.1, proxy.internal"})


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://u@db/lockgate", "not mysql:// URLs"),
        ("lockgate.db", "not 'lockgate.db' (not a URL)"),
    ],
)
def test_a_database_url_of_another_kind_is_refused_plainly(url: str, message: str) -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings(environ={"LOCKGATE_DATABASE_URL": url})
    assert "lockgate runs on SQLite or PostgreSQL" in str(refused.value)
    assert message in str(refused.value)
    assert "LOCKGATE_DATABASE_URL" in str(refused.value)
