"""The webhook outbox survives a server killed between a change's commit and its delivery.

A real ``lockgate serve`` commits a change while the receiver is down (the attempt fails and
the delivery waits in the outbox), is killed with SIGKILL, and is started again on the same
data once the receiver is up: the delivery arrives, signed. On PostgreSQL, two replicas
sharing one database deliver every event exactly once between them.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from tests.delivery.servers import Admin, lockgate_server, start_lockgate, unique
from tests.delivery.webhook_receivers import Receiver

pytestmark = [pytest.mark.fault]

FAST = (
    "--webhook-allow-private-targets",
    "--webhook-backoff-seconds",
    "1",
    "--webhook-max-backoff-seconds",
    "1",
    "--webhook-poll-seconds",
    "1",
)


def _subscribe(admin: Admin, project: str, hook: Receiver) -> None:
    body = {"key": "ops", "url": hook.url, "event_types": ["behavior.changed"]}
    response = admin.http.post(f"/api/v1/projects/{project}/webhooks", json=body)
    assert response.status_code == 201, response.text
    hook.trust([response.json()["secret"]])


def test_a_delivery_queued_before_a_kill_arrives_after_the_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    hook = Receiver(tmp_path / "receiver")  # not started: nothing listens on its port yet
    server = start_lockgate(data, extra=FAST)
    admin = Admin.connect(server.url)
    try:
        admin.project("shop", "production")
        admin.flag("shop", "agent")
        _subscribe(admin, "shop", hook)
        admin.configure("shop", "agent", "production", on=True)  # committed, not delivered
        pending = admin.http.get("/api/v1/projects/shop/webhooks/ops/deliveries").json()
        assert [d["state"] for d in pending["items"]] == ["pending"]
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(10)
    finally:
        admin.http.close()
        server.stop()
    hook.start()
    try:
        with lockgate_server(data, extra=FAST):
            [request] = hook.wait_for(1)
    finally:
        hook.stop()
    assert request["verified"] == [True]
    payload = json.loads(request["body"])
    assert (payload["type"], payload["data"]["after"]["on"]) == ("behavior.changed", True)


@pytest.mark.postgres
def test_two_replicas_deliver_each_event_once(pg_database: str, tmp_path: Path) -> None:
    hook = Receiver(tmp_path / "receiver")
    hook.start()
    project = unique("shop")
    try:
        with (
            lockgate_server(tmp_path / "one", database_url=pg_database, extra=FAST) as one,
            lockgate_server(tmp_path / "two", database_url=pg_database, extra=FAST) as two,
        ):
            first, second = Admin.connect(one.url), Admin.connect(two.url)
            second.versions = first.versions  # one writer at a time, through either replica
            try:
                first.project(project, "production")
                first.flag(project, "agent")
                _subscribe(first, project, hook)
                for index in range(10):
                    writer = first if index % 2 else second
                    writer.configure(project, "agent", "production", on=index % 2 == 0)
                requests = hook.wait_for(10)
            finally:
                first.http.close()
                second.http.close()
    finally:
        hook.stop()
    ids = [r["headers"]["webhook-id"] for r in requests]
    assert len(ids) == len(set(ids)) == 10
    assert all(r["verified"] == [True] for r in requests)
    ons = [json.loads(r["body"])["data"]["after"]["on"] for r in requests]
    assert ons == [index % 2 == 0 for index in range(10)]  # in commit order
