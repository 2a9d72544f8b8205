"""``track()`` end to end: a real SDK client, a real ``lockgate serve``, the stored rows."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from lockgate.sdk import Client
from lockgate.signals.summaries import EXPOSURE
from lockgate.store.db import Database
from lockgate.store.tables import metric_summaries
from tests.delivery.servers import Admin, lockgate_server
from tests.sdk.test_sync_live import TUNING

PROJECT, ENV = "shop", "prod"


def test_tracked_values_reach_the_server_as_summaries(tmp_path: Path) -> None:
    with lockgate_server(tmp_path / "data") as server:
        admin = Admin.connect(server.url)
        admin.project(PROJECT, ENV)
        admin.flag(PROJECT, "checkout")
        targets = [{"variation": "on", "values": ["vip"]}]
        admin.configure(PROJECT, "checkout", ENV, on=True, targets=targets)
        key, _ = admin.sdk_key(PROJECT, ENV)
        with Client(
            key, server.url, tuning=TUNING, events=False, track_behaviors=["checkout"]
        ) as client:
            assert client.wait_until_ready(20)
            for user in ("vip", "u1", "u2"):
                client.bool_variation("checkout", {"key": user}, False)
            client.track("errors", {"key": "vip"})
            client.track("errors", {"key": "u1"}, 2.0)
            client.track("errors", {"key": "u2"}, 0.5)
            assert client.flush_metrics(5)
            assert client.metrics_dropped == 0
        admin.close()
        database = Database(f"sqlite:///{tmp_path / 'data' / 'lockgate.db'}")
        try:
            t = metric_summaries.c
            with database.read() as conn:
                rows = conn.execute(
                    select(t.variation, t.metric, t.count, t.sum, t.exposures).where(
                        t.flag == "checkout"
                    )
                ).all()
        finally:
            database.dispose()
    stored = {(r[0], r[1]): (r[2], r[3], r[4]) for r in rows}
    assert stored == {
        ("on", "errors"): (1, 1.0, 0),
        ("off", "errors"): (2, 2.5, 0),
        ("on", EXPOSURE): (0, 0.0, 1),
        ("off", EXPOSURE): (0, 0.0, 2),
    }


def _cohorts(data_dir: Path) -> list[tuple[str, str, int]]:
    database = Database(f"sqlite:///{data_dir / 'lockgate.db'}")
    try:
        t = metric_summaries.c
        with database.read() as conn:
            rows = conn.execute(
                select(t.cohort, t.metric, t.count).where(t.flag == "checkout", t.cohort != "")
            ).all()
    finally:
        database.dispose()
    return sorted((r[0], r[1], r[2]) for r in rows)


def test_a_cohort_leaves_the_application_only_while_its_attribute_is_not_private(
    tmp_path: Path,
) -> None:
    with lockgate_server(tmp_path / "data") as server:
        admin = Admin.connect(server.url)
        admin.project(PROJECT, ENV)
        admin.flag(PROJECT, "checkout")
        admin.configure(PROJECT, "checkout", ENV, on=True)
        base = f"/api/v1/projects/{PROJECT}/flags/checkout/environments/{ENV}"
        guardrail = {
            "metric": "llm_cost", "aggregation": "sum", "comparison": "absolute",
            "threshold": 50, "per": "account", "window": "1d", "action": "fallback",
        }  # fmt: skip
        admin._ok(admin.http.put(f"{base}/guardrails/llm-cost", json=guardrail), 200, 201)
        key, _ = admin.sdk_key(PROJECT, ENV)

        def track(account: str) -> None:
            with Client(key, server.url, tuning=TUNING, events=False) as client:
                assert client.wait_until_ready(20)
                context = {"key": f"user-{account}", "account": account}
                client.bool_variation("checkout", context, False)
                client.track("llm_cost", context, 2.0)
                assert client.flush_metrics(5)

        track("acme")
        env_url = f"/api/v1/projects/{PROJECT}/environments/{ENV}"
        etag = admin.http.get(env_url).headers["etag"]
        privacy = {"privacy": {"private_attributes": ["account"]}}
        admin._ok(admin.http.patch(env_url, json=privacy, headers={"If-Match": etag}))
        track("globex")
        admin.close()
        cohorts = _cohorts(tmp_path / "data")
    assert cohorts == [("acme", "llm_cost", 1)]  # globex's value never left
