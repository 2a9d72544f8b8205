"""PostgreSQL goes away under a running replica, and comes back.

Replica "cut" reaches the database through a TCP proxy the test cuts and restores; replica
"direct" reaches it directly and keeps working. While cut: what the replica holds in
memory is served (SDK snapshots, remote evaluation, open streams), writes fail fast with a
``503`` problem and change nothing. Once restored: writes work again, the replica catches up
on its own with what the other replica committed meanwhile, and the audit chain is gapless
and verifies.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.delivery.servers import Admin, LockgateServer, lockgate_server, unique
from tests.delivery.sse import SseClient
from tests.faults.tcp_proxy import TcpProxy, tcp_proxy

pytestmark = [pytest.mark.postgres, pytest.mark.fault]

ENV = "prod"
CONNECT_TIMEOUT = 2  # seconds: the replica's database_connect_timeout_seconds
PG_ADDRESS = ("127.0.0.1", 5432)


@pytest.fixture
def outage(
    pg_database: str, tmp_path: Path
) -> Iterator[tuple[TcpProxy, LockgateServer, LockgateServer]]:
    extra = ("--database-connect-timeout-seconds", str(CONNECT_TIMEOUT))
    with (
        tcp_proxy(PG_ADDRESS) as proxy,
        lockgate_server(
            tmp_path, database_url=proxy.url_for(pg_database), name="cut", extra=extra
        ) as cut,
        lockgate_server(tmp_path, database_url=pg_database, name="direct") as direct,
    ):
        yield proxy, cut, direct


@pytest.fixture
def admins(
    outage: tuple[TcpProxy, LockgateServer, LockgateServer],
) -> Iterator[tuple[Admin, Admin]]:
    _, cut, direct = outage
    admin, other = Admin.connect(cut.url), Admin.connect(direct.url)
    try:
        yield admin, other
    finally:
        admin.close()
        other.close()


def _problem(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"] == "application/problem+json", response.text
    body: dict[str, Any] = response.json()
    return body


def _timed(call: Any) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def _refused_write(admin: Admin, project: str, limit: float) -> float:
    """A write through the cut replica: 503 database_unavailable, fast, nothing written."""
    url = f"/api/v1/projects/{project}/flags/a/environments/{ENV}"
    version = admin.versions[(project, "a", ENV)]
    response, elapsed = _timed(
        lambda: admin.http.patch(url, json={"on": False}, headers={"If-Match": f'"{version}"'})
    )
    assert response.status_code == 503, response.text
    problem = _problem(response)
    assert problem["code"] == "database_unavailable"
    assert response.headers["retry-after"]
    assert elapsed < limit, f"the write took {elapsed:.1f} s to fail"
    return elapsed


def _audit_sequence(database_url: str) -> list[int]:
    with psycopg.connect(database_url) as conn:
        return [row[0] for row in conn.execute("SELECT seq FROM audit_log ORDER BY seq")]


def test_reads_from_memory_go_on_and_writes_fail_fast_while_postgres_is_away(
    outage: tuple[TcpProxy, LockgateServer, LockgateServer],
    admins: tuple[Admin, Admin],
    pg_database: str,
    tmp_path: Path,
) -> None:
    proxy, cut, _ = outage
    admin, other = admins
    project = unique("p")
    admin.project(project, ENV)
    admin.flag(project, "a")
    admin.configure(project, "a", ENV, on=True)
    key, _ = admin.sdk_key(project, ENV)
    sdk = {"Authorization": f"Bearer {key}"}
    held = admin.current(key, project, ENV)["version"]
    audit_before = _audit_sequence(pg_database)

    with SseClient.open(cut.url, key) as sse:
        assert sse.next_event().version == held
        proxy.cut("refuse")
        time.sleep(1.2)  # past the one-second SDK key cache: the key is not fresh any more

        # Reads of what the replica holds in memory keep working.
        assert admin.http.get("/healthz").status_code == 200
        snapshot = admin.http.get("/sdk/v1/snapshot", headers=sdk)
        assert snapshot.status_code == 200, snapshot.text
        assert snapshot.json()["version"] == held
        evaluated = admin.http.post("/sdk/v1/evaluate", headers=sdk, json={"context": {}})
        assert evaluated.status_code == 200, evaluated.text
        items = sse.items_for(1.5)  # the open stream stays open: heartbeats go on
        assert any(item.kind == "comment" for item in items), items
        with SseClient.open(cut.url, key) as late:  # and a new one opens from memory
            assert late.next_event().version == held

        # Writes fail fast with a clear problem; so does anything that needs the database.
        refused = _refused_write(admin, project, limit=CONNECT_TIMEOUT + 3)
        created = admin.http.post("/api/v1/projects", json={"key": f"{project}-x"})
        assert created.status_code == 503
        assert _problem(created)["code"] == "database_unavailable"
        listed = admin.http.get("/api/v1/projects")
        assert listed.status_code == 503
        assert _problem(listed)["code"] == "database_unavailable"
        ready = admin.http.get("/readyz")
        assert ready.status_code == 503
        assert _problem(ready)["code"] == "not_ready"

        # A database host that stops answering (no reset) costs at most the connect timeout.
        proxy.cut("hang")
        hung = _refused_write(admin, project, limit=CONNECT_TIMEOUT + 3)
        assert admin.http.get("/sdk/v1/snapshot", headers=sdk).status_code == 200

        # Meanwhile the other replica commits a change the cut one cannot hear about.
        other.versions = dict(admin.versions)
        other.configure(project, "a", ENV, on=False)
        changed = other.stored_version(project, ENV)

        proxy.restore()
        restored = time.monotonic()
        # The cut replica catches up on its own: its listener reconnects and resyncs.
        event = sse.next_event(timeout=15)
        caught_up = time.monotonic() - restored
        assert event.name == "change"
        assert event.version == changed
        assert event.json()["flags"]["a"]["on"] is False

    # Writes work again (the pool's dead connections are replaced, not reused).
    admin.versions = dict(other.versions)
    deadline = time.monotonic() + 10
    while True:
        url = f"/api/v1/projects/{project}/flags/a/environments/{ENV}"
        version = admin.versions[(project, "a", ENV)]
        response = admin.http.patch(url, json={"on": True}, headers={"If-Match": f'"{version}"'})
        if response.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert response.status_code == 200, response.text

    # Nothing half-written: the refused writes left no trace; the audit sequence is gapless.
    assert admin.http.get(f"/api/v1/projects/{project}-x").status_code == 404
    after = _audit_sequence(pg_database)
    assert after == list(range(1, len(after) + 1))
    assert len(after) == len(audit_before) + 2  # the other replica's change and the last one
    verified = subprocess.run(
        [
            sys.executable,
            "-m",
            "lockgate.cli.main",
            "audit",
            "verify",
            "--database-url",
            pg_database,
            "--data-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "Traceback" not in cut.log_text()
    print(  # the measurement is the point (pytest -s shows it)
        f"\nwrite refused in {refused * 1000:.0f} ms (connections reset), "
        f"{hung * 1000:.0f} ms (database not answering, connect timeout {CONNECT_TIMEOUT} s); "
        f"missed change on the stream {caught_up:.1f} s after the database came back"
    )
