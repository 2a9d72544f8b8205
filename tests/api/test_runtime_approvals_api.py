"""Runtime action approvals over HTTP, on SQLite and PostgreSQL: each rule, named."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from lockgate.control.base import Services, utc_now
from lockgate.control.governance import runtime
from lockgate.control.identity.sdk_keys import SdkKeyPrincipal, authenticate_sdk_key
from lockgate.control.jobs import BackgroundJobs, standard_jobs
from lockgate.store.tables import projects
from lockgate.store.verify import verify_database
from tests.api.helpers import add_principal, add_token, bearer

ASK = {
    "behavior": "refunds",
    "action": "refund",
    "summary": "refund order 1042 (129.00 EUR) to the card it was paid with",
    "context": {"key": "user-42", "plan": "pro", "email": "ann@example.com"},
    "private_attributes": ["email"],
    "timeout_seconds": 600,
}


@pytest.fixture
def world(client: TestClient, services: Services) -> dict[str, Any]:
    """Project shop (production protected), behaviors refunds (high) and wire (restricted),
    a server SDK key, two approvers, an approver in development only, an editor, a viewer."""
    assert client.post("/api/v1/projects", json={"key": "shop"}).status_code == 201
    for key, protected in (("development", False), ("production", True)):
        body = {"key": key, "protected": protected, "development": key == "development"}
        assert client.post("/api/v1/projects/shop/environments", json=body).status_code == 201
    for key, tier in (("refunds", "high"), ("wire", "restricted")):
        body = {"key": key, "kind": "mode", "risk_tier": tier, "reason": "generated"}
        assert client.post("/api/v1/projects/shop/flags", json=body).status_code == 201
    r = client.post(
        "/api/v1/projects/shop/environments/production/sdk-keys",
        json={"kind": "server", "name": "billing"},
    )
    assert r.status_code == 201, r.text
    return {
        "key": bearer(r.json()["key"]),
        "approver": add_principal(services, "ava", [("shop", "approver")]),
        "approver2": add_principal(services, "abe", [("shop", "approver")]),
        "dev_approver": add_principal(services, "dev", [("shop", "approver", "development")]),
        "editor": add_principal(services, "erin", [("shop", "editor")]),
        "viewer": add_principal(services, "vic", [("shop", "viewer")]),
    }


def ask(client: TestClient, world: dict[str, Any], **more: Any) -> Any:
    return client.post("/sdk/v1/approvals", json=ASK | more, headers=world["key"])


def decide(client: TestClient, approval_id: int, verb: str, token: str, comment: str = "") -> Any:
    return client.post(
        f"/api/v1/runtime-approvals/{approval_id}/{verb}",
        json={"comment": comment},
        headers=bearer(token),
    )


def audit_of(client: TestClient, approval_id: int) -> list[dict[str, Any]]:
    entries = client.get("/api/v1/audit", params={"project": "shop", "limit": 500}).json()["items"]
    return sorted(
        (e for e in entries if e["refs"].get("runtime_approval") == approval_id),
        key=lambda e: e["seq"],
    )


def test_an_approver_approves_and_the_application_sees_it(
    client: TestClient, world: dict[str, Any], services: Services
) -> None:
    r = ask(client, world)
    assert r.status_code == 201, r.text
    asked = r.json()
    assert asked["state"] == "pending"
    assert asked["approved"] is False
    assert asked["approvals_required"] == 1  # high risk in a protected environment
    assert asked["policy"]["rule"] == "posture.high.approvals.protected = 1"
    # Private attributes are kept as names only.
    assert asked["context"] == {"key": "user-42", "plan": "pro"}
    assert asked["private_attributes"] == ["email"]
    assert asked["requested_by"] == "sdk key billing"

    pending = client.get(
        "/api/v1/projects/shop/runtime-approvals",
        params={"state": "pending"},
        headers=bearer(world["approver"]),
    ).json()
    assert [i["id"] for i in pending["items"]] == [asked["id"]]
    assert pending["items"][0]["summary"] == ASK["summary"]

    r = decide(client, asked["id"], "approve", world["approver"], "customer verified")
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "approved"

    seen = client.get(f"/sdk/v1/approvals/{asked['id']}", headers=world["key"]).json()
    assert seen["approved"] is True
    assert seen["approvals"][0]["by"] == "ava"
    assert seen["approvals"][0]["comment"] == "customer verified"
    assert seen["reason"] == "customer verified"

    entries = audit_of(client, asked["id"])
    assert [e["action"] for e in entries] == [
        "runtime_approval:requested",
        "runtime_approval:approved",
    ]
    requested, approved = entries
    assert requested["actor_type"] == "sdk_key"
    assert requested["object_key"] == "refunds"
    assert requested["after"]["context"] == {"key": "user-42", "plan": "pro"}
    assert "ann@example.com" not in str(entries)
    assert approved["actor_name"] == "ava"
    assert approved["reason"] == "customer verified"
    assert approved["refs"]["state"] == "approved"
    assert verify_database(services.database).ok


def test_one_denial_decides(client: TestClient, world: dict[str, Any]) -> None:
    asked = ask(client, world).json()
    r = decide(client, asked["id"], "deny", world["approver"], "amount too high")
    assert r.status_code == 200, r.text
    seen = client.get(f"/sdk/v1/approvals/{asked['id']}", headers=world["key"]).json()
    assert seen["state"] == "denied"
    assert seen["approved"] is False
    assert seen["reason"] == "amount too high"
    assert decide(client, asked["id"], "approve", world["approver2"]).status_code == 409
    assert [e["action"] for e in audit_of(client, asked["id"])][-1] == "runtime_approval:denied"


def test_a_restricted_behavior_needs_two_distinct_approvers(
    client: TestClient, world: dict[str, Any]
) -> None:
    asked = ask(client, world, behavior="wire", action="wire-transfer").json()
    assert asked["approvals_required"] == 2
    first = decide(client, asked["id"], "approve", world["approver"]).json()
    assert first["state"] == "pending"
    assert len(first["approvals"]) == 1
    # The same person through another token does not count twice.
    again = decide(client, asked["id"], "approve", add_token_for(client, world, "ava"))
    assert again.status_code == 409, again.text
    second = decide(client, asked["id"], "approve", world["approver2"]).json()
    assert second["state"] == "approved"
    assert [a["by"] for a in second["approvals"]] == ["ava", "abe"]


def add_token_for(client: TestClient, world: dict[str, Any], username: str) -> str:
    services: Services = client.app.state.services  # type: ignore[attr-defined]
    return add_token(services, username)


def test_a_request_past_its_deadline_is_timed_out(
    client: TestClient, world: dict[str, Any], services: Services
) -> None:
    asked = ask(client, world, timeout_seconds=30).json()
    later = utc_now() + timedelta(seconds=31)
    services.clock = lambda: later
    seen = client.get(f"/sdk/v1/approvals/{asked['id']}", headers=world["key"]).json()
    assert seen["state"] == "timed_out"
    assert seen["approved"] is False
    assert seen["reason"] == "timed out"
    r = decide(client, asked["id"], "approve", world["approver"])
    assert r.status_code == 409, r.text
    entries = audit_of(client, asked["id"])
    assert entries[-1]["action"] == "runtime_approval:timed_out"
    assert entries[-1]["actor_type"] == "system"


def test_the_background_job_times_requests_out(
    client: TestClient, world: dict[str, Any], services: Services
) -> None:
    asked = ask(client, world, timeout_seconds=5).json()
    jobs = BackgroundJobs(
        services, standard_jobs(services, checkpoint_every=10, checkpoint_minutes=0)
    )
    assert jobs.run_once() == {
        "change-request-expiry": 0,
        "change-request-schedule": 0,
        "runtime-approval-timeout": 0,
        "decision-retention": 0,
        "metric-summary-rollup": 0,
        "cleanup-rules": 0,
    }
    later = utc_now() + timedelta(seconds=6)
    services.clock = lambda: later
    assert (jobs.run_once() or {})["runtime-approval-timeout"] == 1
    seen = client.get(f"/api/v1/runtime-approvals/{asked['id']}").json()
    assert seen["state"] == "timed_out"


def test_a_retry_with_the_same_idempotency_key_does_not_ask_twice(
    client: TestClient, world: dict[str, Any]
) -> None:
    first = ask(client, world, idempotency_key="order-1042-refund")
    again = ask(client, world, idempotency_key="order-1042-refund")
    assert first.status_code == 201, first.text
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"]
    listed = client.get("/api/v1/projects/shop/runtime-approvals").json()
    assert listed["total"] == 1
    requested = [
        e for e in audit_of(client, first.json()["id"]) if e["action"].endswith(":requested")
    ]
    assert len(requested) == 1
    # Once decided, the retry gets the decision.
    decide(client, first.json()["id"], "approve", world["approver"])
    assert ask(client, world, idempotency_key="order-1042-refund").json()["approved"] is True
    # The same key for another action is a conflict naming the field.
    other = ask(client, world, idempotency_key="order-1042-refund", action="cancel")
    assert other.status_code == 409, other.text
    assert "idempotency key" in other.json()["detail"]


@pytest.mark.parametrize("who", ["editor", "viewer", "dev_approver"])
def test_someone_without_the_role_is_refused(
    client: TestClient, world: dict[str, Any], who: str
) -> None:
    asked = ask(client, world).json()
    for verb in ("approve", "deny"):
        r = decide(client, asked["id"], verb, world[who])
        assert r.status_code == 403, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
    # They may still read it (viewers and up).
    assert (
        client.get(f"/api/v1/runtime-approvals/{asked['id']}", headers=bearer(world[who])).json()[
            "state"
        ]
        == "pending"
    )
    assert [e["action"] for e in audit_of(client, asked["id"])] == ["runtime_approval:requested"]


def test_the_application_and_automation_tokens_never_decide(
    client: TestClient, world: dict[str, Any], services: Services
) -> None:
    asked = ask(client, world).json()
    r = client.post(
        f"/api/v1/runtime-approvals/{asked['id']}/approve", json={}, headers=world["key"]
    )
    assert r.status_code == 401, r.text
    robot = add_principal(services, "robot", [("shop", "admin")], token_kind="automation")
    assert decide(client, asked["id"], "approve", robot).status_code == 403


def test_withdrawn_by_the_application(client: TestClient, world: dict[str, Any]) -> None:
    asked = ask(client, world).json()
    r = client.post(
        f"/sdk/v1/approvals/{asked['id']}/withdraw",
        json={"reason": "the customer cancelled"},
        headers=world["key"],
    )
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "withdrawn"
    assert decide(client, asked["id"], "approve", world["approver"]).status_code == 409
    entries = audit_of(client, asked["id"])
    assert entries[-1]["action"] == "runtime_approval:withdrawn"
    assert entries[-1]["reason"] == "the customer cancelled"


def test_other_environments_keys_do_not_see_it(client: TestClient, world: dict[str, Any]) -> None:
    asked = ask(client, world).json()
    r = client.post(
        "/api/v1/projects/shop/environments/development/sdk-keys", json={"kind": "server"}
    )
    other = bearer(r.json()["key"])
    assert client.get(f"/sdk/v1/approvals/{asked['id']}", headers=other).status_code == 404
    r = client.post(
        "/api/v1/projects/shop/environments/production/sdk-keys", json={"kind": "client"}
    )
    client_key = bearer(r.json()["key"])
    assert client.post("/sdk/v1/approvals", json=ASK, headers=client_key).status_code == 403


def test_a_long_poll_answers_at_once_when_decided(
    client: TestClient, world: dict[str, Any]
) -> None:
    asked = ask(client, world).json()
    decide(client, asked["id"], "deny", world["approver"])
    r = client.get(f"/sdk/v1/approvals/{asked['id']}?wait=30", headers=world["key"])
    assert r.json()["state"] == "denied"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"behavior": "nope"}, "behavior"),
        ({"behavior": ""}, "behavior"),
        ({"action": ""}, "action"),
        ({"summary": "   "}, "summary"),
        ({"timeout_seconds": 0}, "timeout_seconds"),
        ({"timeout_seconds": 86_401}, "timeout_seconds"),
        ({"timeout_seconds": "60"}, "timeout_seconds"),
        ({"context": []}, "context"),
        ({"context": {"": 1}}, "context"),
        ({"private_attributes": [""]}, "private_attributes"),
        ({"idempotency_key": ""}, "idempotency_key"),
        ({"extra": 1}, "extra"),
    ],
)
def test_bad_requests_name_the_field(
    client: TestClient, world: dict[str, Any], change: dict[str, Any], field: str
) -> None:
    r = ask(client, world, **change)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    fields = [p["field"] for p in r.json()["errors"]]
    assert any(f.split(".")[0].split("[")[0] == field for f in fields), fields


def test_bad_queries_and_ids_are_4xx(client: TestClient, world: dict[str, Any]) -> None:
    assert client.get("/api/v1/runtime-approvals/0").status_code == 422
    assert client.get("/api/v1/runtime-approvals/999").status_code == 404
    r = client.get("/api/v1/projects/shop/runtime-approvals", params={"state": "maybe"})
    assert r.status_code == 422
    r = client.get("/sdk/v1/approvals/1", params={"wait": 61}, headers=world["key"])
    assert r.status_code == 422
    assert client.post("/api/v1/runtime-approvals/999/approve", json={}).status_code == 404
    r = client.post("/api/v1/runtime-approvals/1/approve", json={"comment": 5})
    assert r.status_code == 422


def test_a_deny_posture_denies_at_once(
    client: TestClient, world: dict[str, Any], services: Services
) -> None:
    with services.database.write() as conn:  # as an approved posture change would leave it
        conn.execute(
            update(projects)
            .where(projects.c.key == "shop")
            .values(posture={"high": {"approvals": {"protected": "deny"}}})
        )
    asked = ask(client, world)
    assert asked.status_code == 201, asked.text
    body = asked.json()
    assert body["state"] == "denied"
    assert body["reason"] == "posture.high.approvals.protected = deny"
    entries = audit_of(client, body["id"])
    assert [e["action"] for e in entries] == [
        "runtime_approval:requested",
        "runtime_approval:denied",
    ]
    assert entries[1]["actor_name"] == "runtime-approval-policy"


def test_concurrent_retries_with_one_idempotency_key_make_one_request(
    client: TestClient, world: dict[str, Any], services: Services
) -> None:
    """A client that times out and retries while its first request is still in flight."""
    key = services_key(client, world)
    draft = runtime.ApprovalDraft(
        behavior="refunds",
        action="refund",
        summary="refund order 1042",
        context={"key": "user-42"},
        timeout_seconds=600,
        idempotency_key="order-1042",
    )
    barrier = threading.Barrier(4)
    answers: list[tuple[int, bool]] = []

    def retry() -> None:
        barrier.wait()
        view, created = runtime.request_approval(services, key, "req", draft)
        answers.append((view["id"], created))

    threads = [threading.Thread(target=retry) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(answers) == 4
    assert len({approval_id for approval_id, _ in answers}) == 1
    assert sum(created for _, created in answers) == 1
    listed = client.get("/api/v1/projects/shop/runtime-approvals").json()
    assert listed["total"] == 1


def services_key(client: TestClient, world: dict[str, Any]) -> SdkKeyPrincipal:
    """The principal of the world's server key, as the delivery layer authenticates it."""
    services: Services = client.app.state.services  # type: ignore[attr-defined]
    value = world["key"]["Authorization"].removeprefix("Bearer ")
    with services.view() as conn:
        return authenticate_sdk_key(conn, value, services.now())


def test_the_request_records_what_the_behavior_served_that_context(
    client: TestClient, world: dict[str, Any]
) -> None:
    body = {"key": "notes", "kind": "mode", "risk_tier": "low", "reason": "generated"}
    assert client.post("/api/v1/projects/shop/flags", json=body).status_code == 201
    path = "/api/v1/projects/shop/flags/notes/environments/production"
    etag = client.get(path).headers["ETag"]
    change = {"on": True, "default": {"variation": "approval_required"}, "reason": "ask first"}
    r = client.patch(path, json=change, headers={"If-Match": etag})
    assert r.status_code == 200, r.text  # a low-risk behavior: applied at once
    asked = ask(client, world, behavior="notes").json()  # the first SDK call: a fresh snapshot
    assert asked["served"]["variation"] == "approval_required"
    assert asked["served"]["reason"] == "FALLTHROUGH"
    requested = audit_of(client, asked["id"])[0]
    assert requested["after"]["served"]["variation"] == "approval_required"


def test_a_missed_notification_is_caught_up_when_the_listener_reconnects(
    client: TestClient, world: dict[str, Any], services: Services
) -> None:
    """A decision whose wake-up never came (as when a replica's change listener was
    disconnected) reaches the waiting long poll once the listener reconnects; a wake-up
    that finds the request still pending does not end the wait."""
    asked = ask(client, world).json()
    hub = client.app.state.hub  # type: ignore[attr-defined]
    answers: list[Any] = []
    poll = threading.Thread(
        target=lambda: answers.append(
            client.get(f"/sdk/v1/approvals/{asked['id']}?wait=20", headers=world["key"])
        )
    )
    poll.start()
    for _ in range(200):  # the long poll is registered
        if hub.approvals.waiting():
            break
        threading.Event().wait(0.01)
    hub.approvals.notify_all()  # still pending: the poll goes on waiting
    threading.Event().wait(0.3)
    assert poll.is_alive()
    with services.view() as conn:
        approver = authenticate_token_caller(conn, services, world["approver"])
    runtime.deny(services, approver, asked["id"], comment="decided elsewhere")  # no wake-up
    if services.database.is_sqlite:
        threading.Event().wait(0.3)
        assert poll.is_alive()  # nothing told this process
        hub.approvals.notify_all()  # the listener reconnects: every reader reads again
    # (On PostgreSQL the decision's NOTIFY reaches this process's listener by itself.)
    poll.join(10)
    assert not poll.is_alive()
    assert answers[0].json()["state"] == "denied"


def authenticate_token_caller(conn: Any, services: Services, token: str) -> Any:
    from lockgate.control.base import Caller
    from lockgate.control.identity.credentials import authenticate_token

    return Caller(authenticate_token(conn, token, services.now()), "test")


def test_requests_are_filtered_by_the_kind_of_behavior(
    client: TestClient, world: dict[str, Any]
) -> None:
    r = client.patch(
        "/api/v1/projects/shop/flags/wire",
        json={"behavior_kind": "data_movement", "reason": "classified"},
        headers={"If-Match": '"1"'},
    )
    assert r.status_code == 200, r.text
    assert ask(client, world).status_code == 201
    assert ask(client, world, behavior="wire", action="wire-out").status_code == 201

    def listed(kind: str) -> list[str]:
        r = client.get("/api/v1/projects/shop/runtime-approvals", params={"behavior_kind": kind})
        assert r.status_code == 200, r.text
        return [item["behavior"] for item in r.json()["items"]]

    assert listed("data_movement") == ["wire"]
    assert listed("tool_action") == []
    r = client.get("/api/v1/projects/shop/runtime-approvals", params={"behavior_kind": "x"})
    assert r.status_code == 422
    assert "behavior_kind" in r.text
