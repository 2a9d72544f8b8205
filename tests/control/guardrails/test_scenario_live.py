"""The whole loop against a real ``lockgate serve`` with real SDK clients.

Three behaviors roll out in one environment, each with an error-rate guardrail and a
staged plan; SDK clients evaluate them and ``track()`` errors. The server's guardrail
cycle (every second here) advances the healthy one stage by stage, pulls back the one
whose generated variation regresses — its clients get the fallback, its plan pauses, and
the audit entry carries the numbers — and leaves the one with too small a sample alone.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lockgate.sdk import Client
from tests.delivery.servers import Admin, lockgate_server
from tests.sdk.test_sync_live import TUNING

PROJECT, ENV = "shop", "prod"
GUARDRAIL = {"metric": "error", "min_sample": 200, "window": "5m", "action": "fallback"}


def _plan(min_sample: int) -> dict[str, Any]:
    return {
        "variation": "full",
        "stable": "off",
        "stages": [
            {"percent": 50, "min_hold": 2, "min_sample": min_sample},
            {"percent": 100},
        ],
    }


def _until(check: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


def _config(admin: Admin, flag: str) -> str:
    return f"/api/v1/projects/{PROJECT}/flags/{flag}/environments/{ENV}"


def _rollout(admin: Admin, flag: str) -> dict[str, Any]:
    answer = admin.http.get(_config(admin, flag) + "/rollout")
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def _traffic(
    client: Client, flag: str, users: range, error_rates: dict[str, float], rng: random.Random
) -> dict[str, int]:
    served: dict[str, int] = {}
    for i in users:
        context = {"key": f"{flag}-user-{i}"}
        variation = client.mode(flag, context).value
        served[variation] = served.get(variation, 0) + 1
        if rng.random() < error_rates.get(variation, 0.0):
            client.track("error", context)
    assert client.flush_metrics(10)
    assert client.flush_counts(10)
    return served


def test_a_staged_rollout_advances_while_healthy_and_pulls_back_on_regression(
    tmp_path: Path,
) -> None:
    rng = random.Random(13)
    extra = ("--guardrail-cycle-seconds", "1")
    with lockgate_server(tmp_path / "data", extra=extra) as server:
        admin = Admin.connect(server.url)
        admin.project(PROJECT, ENV)
        for flag in ("healthy-bot", "broken-bot", "quiet-bot"):
            admin.flag(PROJECT, flag, kind="mode", risk_tier="low")
            put = admin.http.put(_config(admin, flag) + "/guardrails/errors", json=GUARDRAIL)
            assert put.status_code == 200, put.text
            plan = admin.http.put(_config(admin, flag) + "/rollout", json=_plan(200))
            assert plan.status_code == 200, plan.text
        # The approved plans' first stage: applied by the cycle, as system:guardrails.
        first_stage = lambda: all(  # noqa: E731
            _rollout(admin, f)["stage"] == 0 for f in ("healthy-bot", "broken-bot", "quiet-bot")
        )
        assert _until(first_stage)
        key, _ = admin.sdk_key(PROJECT, ENV)
        with Client(key, server.url, tuning=TUNING, events=False) as client:
            assert client.wait_until_ready(20)
            assert _until(lambda: "error" in client.snapshot.metrics, 10)
            # Healthy: 2 % errors on both variations.
            _traffic(client, "healthy-bot", range(1200), {"full": 0.02, "off": 0.02}, rng)
            # Regressing: the generated variation errs ten times as often.
            served = _traffic(client, "broken-bot", range(1200), {"full": 0.20, "off": 0.02}, rng)
            assert served.get("full", 0) > 400
            # Too small a sample: a terrible error rate, but 30 users.
            _traffic(client, "quiet-bot", range(30), {"full": 0.9, "off": 0.0}, rng)
            started = time.monotonic()

            assert _until(lambda: _rollout(admin, "broken-bot")["status"] == "paused")
            fired_after = time.monotonic() - started
            assert fired_after < 300  # within one window (5 minutes); in practice seconds
            # Its clients get the fallback once the new snapshot reaches them.
            assert _until(
                lambda: (
                    {
                        client.mode("broken-bot", {"key": f"broken-bot-user-{i}"}).value
                        for i in range(200)
                    }
                    == {"off"}
                ),
                15,
            )
            # The healthy one went on to its last stage, by itself.
            done = _until(lambda: _rollout(admin, "healthy-bot")["status"] == "completed")
            assert done, json.dumps(
                [_rollout(admin, "healthy-bot"),
                 admin.http.get(_config(admin, "healthy-bot") + "/guardrails").json()]
            )  # fmt: skip
            assert client.mode("healthy-bot", {"key": "anyone"}).value == "full"
            quiet = admin.http.get(_config(admin, "quiet-bot") + "/guardrails/errors").json()
        audit = admin.http.get("/api/v1/audit", params={"limit": 500}).json()["items"]
        admin.close()
    assert quiet["evaluation"]["state"] == "insufficient_data"
    breaches = [e for e in audit if e["action"] == "guardrail:breached"]
    assert [e["object_key"] for e in breaches] == ["broken-bot/errors"]
    evidence = breaches[0]["evidence"]
    assert evidence["state"] == "breached"
    assert evidence["interval"][0] > 0
    assert evidence["samples"]["full"] >= 200
    assert evidence["test"]["alpha"] == 0.05
    assert breaches[0]["actor_id"] == "system:guardrails"
    advances = [
        e["object_key"] for e in audit
        if e["action"] == "rollout_plan:advanced" and e["actor_id"] == "system:guardrails"
    ]  # fmt: skip
    assert advances.count("healthy-bot") == 2  # stage 0, then stage 1
    assert advances.count("quiet-bot") == 1  # stage 0 only: not enough data to go on
