"""Failed logins: locked out per username and per address (429 + Retry-After), audited."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from lockgate.control.base import Services
from lockgate.control.identity.login_limits import LoginLimiter
from lockgate.errors import RateLimited
from tests.api.identity_helpers import PASSWORD, audit_rows, make_user, use_cheap_hashing


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def _cheap_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    use_cheap_hashing(monkeypatch)


def _attempt(app: FastAPI, username: str, password: str) -> tuple[int, str | None]:
    r = TestClient(app).post(
        "/api/v1/auth/login", json={"username": username, "password": password}
    )
    return r.status_code, r.headers.get("Retry-After")


def test_limiter_locks_a_key_for_the_window_and_forgives_successes() -> None:
    clock = FakeClock()
    limiter = LoginLimiter(3, 60, clock=clock)
    for _ in range(3):
        limiter.begin(["user:a", "addr:x"])  # three failures (never forgiven)
    with pytest.raises(RateLimited) as locked:
        limiter.begin(["user:a", "addr:y"])
    assert locked.value.retry_after == 60
    clock.now += 59.5
    with pytest.raises(RateLimited) as still:
        limiter.begin(["user:b", "addr:x"])  # the address is locked too
    assert still.value.retry_after == 1
    clock.now += 1
    attempt = limiter.begin(["user:a", "addr:x"])
    limiter.succeeded(attempt, clear=["user:a"])
    for _ in range(2):
        limiter.begin(["user:a", "addr:z"])
    limiter.begin(["user:a", "addr:z"])  # success cleared the earlier failures of user:a
    assert limiter.locked_out("user:a")


def test_limiter_stays_bounded() -> None:
    clock = FakeClock()
    limiter = LoginLimiter(3, 60, max_keys=100, clock=clock)
    for n in range(1000):
        limiter.begin([f"user:{n}"])
        clock.now += 0.01
    assert len(limiter) <= 100


def test_zero_disables_the_limit() -> None:
    limiter = LoginLimiter(0, 60)
    for _ in range(50):
        limiter.begin(["user:a"])
    assert len(limiter) == 0


def test_repeated_failures_lock_the_username_even_for_the_right_password(
    client: TestClient, app: FastAPI, services: Services
) -> None:
    make_user(client, "alice")
    clock = FakeClock()
    app.state.login_limiter.clock = clock
    for _ in range(5):
        assert _attempt(app, "alice", "wrong-password!") == (401, None)
    status, retry_after = _attempt(app, "alice", PASSWORD)
    assert status == 429
    assert retry_after == "300"
    clock.now += 120
    assert _attempt(app, "alice", PASSWORD) == (429, "180")
    failed = audit_rows(services, "auth:login_failed")
    assert len(failed) == 5  # refused attempts are not checked, so not audited as failures
    assert all(e["evidence"]["client_address"] == "testclient" for e in failed)
    assert [e["evidence"]["locked_out"] for e in failed] == [False] * 4 + [True]
    clock.now += 181
    assert _attempt(app, "alice", PASSWORD) == (200, None)
    assert [e["object_key"] for e in audit_rows(services, "auth:login")] == ["alice"]


def test_one_address_guessing_many_usernames_is_locked_out(
    client: TestClient, app: FastAPI
) -> None:
    make_user(client, "alice")
    for n in range(5):
        assert _attempt(app, f"guess{n}", "whatever-password")[0] == 401
    status, retry_after = _attempt(app, "alice", PASSWORD)
    assert status == 429
    assert retry_after is not None
    assert int(retry_after) > 0


def test_wrong_current_passwords_count_as_failures(client: TestClient, app: FastAPI) -> None:
    make_user(client, "alice")
    http = TestClient(app)
    r = http.post("/api/v1/auth/login", json={"username": "alice", "password": PASSWORD})
    csrf = r.json()["csrf_token"]
    body = {"current_password": "not-my-password", "new_password": "new-password-123"}
    for _ in range(5):
        assert (
            http.post(
                "/api/v1/auth/password", json=body, headers={"X-CSRF-Token": csrf}
            ).status_code
            == 422
        )
    body["current_password"] = PASSWORD
    r = http.post("/api/v1/auth/password", json=body, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 429
    assert "Retry-After" in r.headers
