"""Failed logins: locked out per (address, username) and per username (429 + Retry-After);
failures and the first refusal of each lock-out audited."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from lockgate.control.base import Services
from lockgate.control.identity.login_limits import LockedOut, LoginLimiter, login_keys
from tests.api.identity_helpers import PASSWORD, audit_rows, make_user, use_cheap_hashing


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def _cheap_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    use_cheap_hashing(monkeypatch)


def _attempt(
    app: FastAPI, username: str, password: str, address: str = "testclient"
) -> tuple[int, str | None]:
    r = TestClient(app, client=(address, 50000)).post(
        "/api/v1/auth/login", json={"username": username, "password": password}
    )
    return r.status_code, r.headers.get("Retry-After")


def test_limiter_locks_a_key_for_the_window_and_forgives_successes() -> None:
    clock = FakeClock()
    limiter = LoginLimiter(3, 60, clock=clock)
    for _ in range(3):
        limiter.begin(login_keys("a", "x"))  # three failures (never forgiven)
    with pytest.raises(LockedOut) as locked:
        limiter.begin(login_keys("a", "x"))
    assert (locked.value.retry_after, locked.value.keys) == (60, ("pair:x|a",))
    limiter.begin(login_keys("b", "x"))  # another user at the same address is not locked
    limiter.begin(login_keys("A", "y"))  # nor the same user elsewhere (usernames fold case)
    clock.now += 59.5
    with pytest.raises(LockedOut) as still:
        limiter.begin(login_keys("a", "x"))
    assert still.value.retry_after == 1
    clock.now += 1
    attempt = limiter.begin(login_keys("a", "x"))
    limiter.succeeded(attempt, clear=login_keys("a", "x")[:1])
    for _ in range(3):
        limiter.begin(login_keys("a", "x"))  # success cleared the pair's earlier failures
    assert limiter.locked_out("pair:x|a")


def test_a_username_is_locked_after_its_limit_from_any_addresses() -> None:
    clock = FakeClock()
    limiter = LoginLimiter(3, 60, max_user_failures=5, clock=clock)
    for n in range(5):
        limiter.begin(login_keys("a", f"10.0.0.{n}"))  # one failure from each of 5 addresses
    with pytest.raises(LockedOut) as locked:
        limiter.begin(login_keys("a", "10.0.0.99"))
    assert locked.value.keys == ("user:a",)
    limiter.begin(login_keys("b", "10.0.0.99"))


def test_only_the_first_refusal_of_a_lock_out_is_marked_first() -> None:
    clock = FakeClock()
    limiter = LoginLimiter(1, 60, clock=clock)
    limiter.begin(login_keys("a", "x"))
    firsts = []
    for _ in range(3):
        with pytest.raises(LockedOut) as refused:
            limiter.begin(login_keys("a", "x"))
        firsts.append(refused.value.first)
        clock.now += 1
    clock.now += 60  # the lock-out ends; a new one is a new first
    limiter.begin(login_keys("a", "x"))
    with pytest.raises(LockedOut) as again:
        limiter.begin(login_keys("a", "x"))
    assert [*firsts, again.value.first] == [True, False, False, True]


def test_limiter_stays_bounded() -> None:
    clock = FakeClock()
    limiter = LoginLimiter(3, 60, max_keys=100, clock=clock)
    for n in range(1000):
        limiter.begin(login_keys(f"u{n}", "x"))
        clock.now += 0.01
    assert len(limiter) <= 100


def test_zero_disables_the_limit() -> None:
    limiter = LoginLimiter(0, 60)
    for _ in range(50):
        limiter.begin(login_keys("a", "x"))
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


def test_people_sharing_an_address_do_not_lock_each_other_out(
    client: TestClient, app: FastAPI, services: Services
) -> None:
    make_user(client, "alice")
    make_user(client, "bob")
    for _ in range(5):
        assert _attempt(app, "alice", "wrong-password!")[0] == 401
    assert _attempt(app, "alice", PASSWORD)[0] == 429  # alice, from this address
    assert _attempt(app, "bob", PASSWORD) == (200, None)  # bob behind the same NAT
    assert _attempt(app, "alice", PASSWORD, address="192.0.2.7") == (200, None)
    refused = audit_rows(services, "auth:login_refused")
    assert [(e["object_key"], e["evidence"]["locked"]) for e in refused] == [("alice", ["pair"])]
    assert refused[0]["evidence"]["client_address"] == "testclient"


def test_a_username_guessed_from_many_addresses_is_locked_everywhere(
    client: TestClient, app: FastAPI, services: Services
) -> None:
    make_user(client, "alice")
    app.state.login_limiter.clock = FakeClock()  # twenty slow logins must not shift Retry-After
    for n in range(20):  # login_max_user_failures, one failure per address
        assert _attempt(app, "alice", "wrong-password!", address=f"198.51.100.{n}")[0] == 401
    status, retry_after = _attempt(app, "alice", PASSWORD, address="203.0.113.1")
    assert (status, retry_after) == (429, "300")
    assert _attempt(app, "alice", PASSWORD, address="203.0.113.1")[0] == 429
    refused = audit_rows(services, "auth:login_refused")
    assert len(refused) == 1  # the first refusal of the lock-out, not every one
    assert refused[0]["evidence"]["locked"] == ["user"]
    assert refused[0]["evidence"]["retry_after"] == 300


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
