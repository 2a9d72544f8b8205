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
