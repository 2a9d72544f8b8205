"""Concurrent writes through a real server process never fail with 'database is locked'.

Eight threads change flag configurations at once through HTTP against `lockgate serve` on
SQLite and on PostgreSQL. Every request must end in 200 (its write applied) or 409 (a
stale version, nothing applied) — never a 5xx — and the audit log must hold exactly one
entry per applied change, with the chain intact.
"""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from lockgate.settings import Settings
from lockgate.store.db import Database
from lockgate.store.tables import audit_log
from lockgate.store.verify import verify_database
from tests.cli.lockgate_server import running_server

THREADS = 8
WRITES_PER_THREAD = 12
FLAGS = 4


def _seed(admin: httpx.Client) -> None:
    admin.post("/api/v1/projects", json={"key": "shop"}).raise_for_status()
    admin.post("/api/v1/projects/shop/environments", json={"key": "production"}).raise_for_status()
    for n in range(FLAGS):
        body = {"key": f"flag-{n}", "kind": "boolean"}
        admin.post("/api/v1/projects/shop/flags", json=body).raise_for_status()


def _writer(
    base: str, token: str, worker: int, outcomes: Counter[int], lock: threading.Lock
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
        for i in range(WRITES_PER_THREAD):
            url = f"/api/v1/projects/shop/flags/flag-{(worker + i) % FLAGS}/environments/production"
            version = http.get(url).json()["version"]
            response = http.patch(
                url,
                json={"on": (worker + i) % 2 == 0, "salt": f"w{worker}-{i}"},
                headers={"If-Match": f'"{version}"'},
            )
            with lock:
                outcomes[response.status_code] += 1


def _run_writers(url: str, token: str) -> Counter[int]:
    outcomes: Counter[int] = Counter()
    lock = threading.Lock()
    workers = [
        threading.Thread(target=_writer, args=(url, token, w, outcomes, lock))
        for w in range(THREADS)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert not any(w.is_alive() for w in workers)
    return outcomes


@pytest.mark.slow
def test_concurrent_api_writes_are_serialised_not_lost(settings: Settings, tmp_path: Path) -> None:
    with running_server(tmp_path, settings.database_url) as server:
        auth = {"Authorization": f"Bearer {server.token}"}
        with httpx.Client(base_url=server.url, headers=auth) as admin:
            _seed(admin)
        outcomes = _run_writers(server.url, server.token)
    assert set(outcomes) <= {200, 409}, outcomes
    assert sum(outcomes.values()) == THREADS * WRITES_PER_THREAD
    assert outcomes[200] > 0
    database = Database(settings.database_url or f"sqlite:///{tmp_path / 'data' / 'lockgate.db'}")
    try:
        with database.read() as conn:
            applied = conn.execute(
                select(func.count())
                .select_from(audit_log)
                .where(audit_log.c.action == "flag:configured")
            ).scalar_one()
        assert applied == outcomes[200]
        assert verify_database(database).ok
    finally:
        database.dispose()
