"""Runtime approvals through the real SDK against a real ``lockgate serve``, on both databases.

One server per backend for the module (SQLite in a temporary directory; PostgreSQL in a
database made for it and dropped after). Each test has its own behavior; decisions are
given through the management API as an approver would.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lockgate.sdk import ApprovalStatus, Client
from tests.conftest import BACKENDS
from tests.delivery.servers import (
    LiveProject,
    LockgateServer,
    live_project,
    lockgate_server,
    unique,
)

PROJECT = "shop"
ENV = "production"
CONTEXT = {"key": "user-42", "plan": "pro", "email": "ann@example.com"}


class Live(LiveProject):
    def __init__(self, server: LockgateServer) -> None:
        super().__init__(server, PROJECT, ENV)

    def behavior(self, tier: str = "high") -> str:
        key = unique("b")
        self.admin.flag(PROJECT, key, "mode", risk_tier=tier, reason="generated")
        return key

    def decide(self, approval_id: int, verb: str, comment: str = "") -> float:
        """Decide; the time the server's answer arrived (the decision is committed)."""
        r = self.admin.http.post(
            f"/api/v1/runtime-approvals/{approval_id}/{verb}", json={"comment": comment}
        )
        assert r.status_code == 200, r.text
        return time.monotonic()


@pytest.fixture(scope="module", params=BACKENDS)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    data = tmp_path_factory.mktemp(f"approvals-{request.param}")
    with live_project(data, request.param, Live) as here:
        yield here


@pytest.fixture
def client(live: Live) -> Iterator[Client]:
    with Client(live.key, live.server.url, events=False, private_attributes=["email"]) as sdk:
        yield sdk


def in_thread(target: Any) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(target()), daemon=True)
    thread.start()
    return thread, out


def test_an_approval_reaches_the_waiting_application(live: Live, client: Client) -> None:
    behavior = live.behavior()
    thread, out = in_thread(
        lambda: (
            client.request_approval(behavior, "refund", CONTEXT, "refund order 1042", timeout=60),
            time.monotonic(),
        )
    )
    asked = live.pending(behavior)
    assert asked["context"] == {"key": "user-42", "plan": "pro"}  # the e-mail never left
    assert asked["private_attributes"] == ["email"]
    time.sleep(0.3)  # the SDK is now waiting in a long poll
    decided_at = live.decide(asked["id"], "approve", "verified")
    thread.join(20)
    decision, seen_at = out[0]
    assert decision.status is ApprovalStatus.APPROVED
    assert decision.approved
    assert bool(decision)
    assert decision.reason == "verified"
    assert decision.decided_by == ("admin",)
    assert decision.request_id == asked["id"]
    assert seen_at - decided_at < 1.0  # told as it happens, not at the next poll


def test_a_denial_reaches_the_waiting_application(live: Live, client: Client) -> None:
    behavior = live.behavior()
    handle = client.start_approval(behavior, "refund", CONTEXT, "refund order 7", timeout=60)
    assert handle.id is not None
    assert handle.poll() is None  # pending
    live.decide(handle.id, "deny", "not this one")
    decision = handle.wait()
    assert decision.status is ApprovalStatus.DENIED
    assert not decision.approved
    assert decision.reason == "not this one"


def test_a_request_nobody_decides_times_out(live: Live, client: Client) -> None:
    behavior = live.behavior()
    started = time.monotonic()
    decision = client.request_approval(behavior, "refund", CONTEXT, "late", timeout=1.5)
    assert decision.status is ApprovalStatus.TIMED_OUT
    assert not decision.approved
    assert decision.request is not None
    assert decision.request["state"] == "timed_out"  # the server's own verdict
    assert 1.4 < time.monotonic() - started < 5.0


def test_a_retry_with_the_same_idempotency_key_is_the_same_request(
    live: Live, client: Client
) -> None:
    behavior = live.behavior()
    key = f"order-{secrets.token_hex(4)}"
    first = client.start_approval(behavior, "refund", CONTEXT, "once", idempotency_key=key)
    again = client.start_approval(behavior, "refund", CONTEXT, "once", idempotency_key=key)
    assert first.id is not None
    assert first.id == again.id
    live.decide(first.id, "approve")
    assert again.wait().approved
    r = live.admin.http.get(
        f"/api/v1/projects/{PROJECT}/runtime-approvals", params={"behavior": behavior}
    )
    assert r.json()["total"] == 1


def test_withdrawn_by_the_application(live: Live, client: Client) -> None:
    behavior = live.behavior()
    handle = client.start_approval(behavior, "refund", CONTEXT, "maybe", timeout=60)
    decision = handle.withdraw("the customer cancelled")
    assert decision.status is ApprovalStatus.WITHDRAWN
    assert handle.id is not None
    shown = live.admin.http.get(f"/api/v1/runtime-approvals/{handle.id}").json()
    assert shown["state"] == "withdrawn"


def test_the_async_form(live: Live, client: Client) -> None:
    behavior = live.behavior()

    async def ask() -> Any:
        return await client.request_approval_async(behavior, "refund", CONTEXT, "async", timeout=60)

    thread, out = in_thread(lambda: asyncio.run(ask()))
    asked = live.pending(behavior)
    live.decide(asked["id"], "approve")
    thread.join(20)
    assert out[0].approved


def test_a_refused_request_is_an_error_decision_not_an_exception(
    live: Live, client: Client
) -> None:
    decision = client.request_approval("no-such-behavior", "refund", CONTEXT, "x", timeout=5)
    assert decision.status is ApprovalStatus.ERROR
    assert not decision.approved
    assert "no-such-behavior" in decision.reason


def test_an_unreachable_server_is_a_timed_out_decision() -> None:
    with Client("lgs_nothing", "http://127.0.0.1:9", events=False, start=False) as client:
        started = time.monotonic()
        decision = client.request_approval("b", "refund", CONTEXT, "x", timeout=1.0)
    assert decision.status is ApprovalStatus.TIMED_OUT
    assert "could not reach the server" in decision.reason
    assert time.monotonic() - started < 6.0


def test_many_waiting_applications_are_all_told(live: Live, client: Client) -> None:
    behavior = live.behavior()
    handles = [
        client.start_approval(behavior, "refund", {"key": f"u{i}"}, f"request {i}", timeout=60)
        for i in range(20)
    ]
    threads = [in_thread(h.wait) for h in handles]
    time.sleep(0.3)
    for i, handle in enumerate(handles):
        assert handle.id is not None
        live.decide(handle.id, "approve" if i % 2 else "deny")
    for i, (thread, out) in enumerate(threads):
        thread.join(20)
        assert out[0].approved is bool(i % 2)


@pytest.mark.postgres
def test_a_decision_on_one_replica_reaches_an_sdk_waiting_on_another(
    tmp_path: Path, pg_database: str
) -> None:
    with (
        lockgate_server(tmp_path / "one", database_url=pg_database, name="one") as one,
        lockgate_server(tmp_path / "two", database_url=pg_database, name="two") as two,
    ):
        live = Live(one)
        try:
            behavior = live.behavior()
            with Client(live.key, two.url, events=False, start=False) as sdk:
                handle = sdk.start_approval(behavior, "refund", CONTEXT, "elsewhere", timeout=60)
                assert handle.id is not None
                thread, out = in_thread(lambda: (handle.wait(), time.monotonic()))
                time.sleep(0.5)  # waiting in a long poll on replica two
                decided_at = live.decide(handle.id, "approve")  # through replica one
                thread.join(20)
            decision, seen_at = out[0]
            assert decision.approved
            assert seen_at - decided_at < 1.0  # NOTIFY, not the end of the long poll
        finally:
            live.admin.close()
