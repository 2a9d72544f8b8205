"""Kill, restore, targeted rollback and an incident, seen by a real SDK connected to a real
``lockgate serve`` over its stream (SQLite; the server a subprocess)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lockgate.engine import Mode
from lockgate.engine.result import Reason
from lockgate.sdk import Client
from tests.delivery.servers import Admin, lockgate_server
from tests.sdk.test_sync_live import TUNING, Seen

PROJECT, ENV = "shop", "prod"
FLAG = f"/api/v1/projects/{PROJECT}/flags/agent"
CONFIG = f"{FLAG}/environments/{ENV}"


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def test_an_sdk_follows_kill_rollback_incident_and_restore(tmp_path: Path) -> None:
    with lockgate_server(tmp_path / "data") as server:
        admin = Admin.connect(server.url)
        admin.project(PROJECT, ENV)
        admin.flag(PROJECT, "agent", kind="mode", tags=["payments"])
        admin.configure(PROJECT, "agent", ENV, on=True, default={"variation": "full"})
        key, _ = admin.sdk_key(PROJECT, ENV)
        http = admin.http
        with Client(key, server.url, tuning=TUNING, start=False) as client:
            seen = Seen(client)
            client.start()
            assert client.wait_until_ready(20)
            user, eu_user = {"key": "u1"}, {"key": "u2", "region": "eu"}

            def reason(context: dict[str, Any]) -> Reason:
                return client.mode_detail("agent", context).reason

            assert client.mode("agent", user) is Mode.FULL

            _ok(http.post(f"{FLAG}/kill", json={"environments": [ENV], "reason": "errors"}))
            seen.until(lambda: reason(user) is Reason.KILLED)
            assert client.mode("agent", eu_user) is Mode.OFF

            etag = http.get(CONFIG).headers["etag"]
            restored = http.post(
                f"{CONFIG}/restore", json={"reason": "fixed"}, headers={"If-Match": etag}
            )
            _ok(restored)
            seen.until(lambda: reason(user) is Reason.FALLTHROUGH)
            assert client.mode("agent", user) is Mode.FULL

            body = {"audience": "region:eu", "reason": "EU errors"}
            _ok(http.post(f"{CONFIG}/exclusions", json=body), 201)
            seen.until(lambda: reason(eu_user) is Reason.EXCLUDED)
            detail = client.mode_detail("agent", eu_user)
            assert (detail.value, detail.rule_id) == (Mode.OFF, "region-eu")
            assert client.mode("agent", user) is Mode.FULL

            start = {"environment": ENV, "tags": ["payments"], "reason": "provider down"}
            incident = _ok(http.post(f"/api/v1/projects/{PROJECT}/incidents", json=start), 201)
            seen.until(lambda: reason(user) is Reason.INCIDENT)
            ended = f"/api/v1/projects/{PROJECT}/incidents/{incident['id']}/end"
            _ok(http.post(ended, json={"reason": "recovered"}))
            seen.until(lambda: reason(user) is Reason.FALLTHROUGH)
            assert reason(eu_user) is Reason.EXCLUDED  # the rollback outlives the incident
        admin.close()
