"""Two ``lockgate serve`` replicas on one PostgreSQL database: changes reach every replica.

Replica 1 takes the writes, replica 2 serves the stream. The replicas share a data
directory (as they would share the audit signing key) and a fresh database.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator

import psycopg
import pytest

from lockgate.delivery.pg_notify import APPLICATION_NAME
from tests.delivery.servers import Admin, LockgateServer, lockgate_server, unique
from tests.delivery.sse import SseClient

pytestmark = pytest.mark.postgres

ENV = "prod"


@pytest.fixture(scope="module")
def replicas(
    module_pg_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LockgateServer, LockgateServer]]:
    data = tmp_path_factory.mktemp("replicas")
    # The second starts after the first: it finds the schema migrated, the signing key made.
    with (
        lockgate_server(data, database_url=module_pg_database, name="replica1") as first,
        lockgate_server(data, database_url=module_pg_database, name="replica2") as second,
    ):
        yield first, second


@pytest.fixture(scope="module")
def writer(replicas: tuple[LockgateServer, LockgateServer]) -> Iterator[Admin]:
    admin = Admin.connect(replicas[0].url)
    try:
        yield admin
    finally:
        admin.close()


def _listener_pids(database_url: str, server: LockgateServer) -> list[int]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s",
            (f"{APPLICATION_NAME}/{server.pid}",),
        ).fetchall()
    return [int(row[0]) for row in rows]


def _setup(writer: Admin) -> tuple[str, str]:
    project = unique("p")
    writer.project(project, ENV)
    writer.flag(project, "a")
    key, _ = writer.sdk_key(project, ENV)
    return project, key


def test_a_change_on_one_replica_reaches_streams_on_the_other(
    replicas: tuple[LockgateServer, LockgateServer], writer: Admin
) -> None:
    _, second = replicas
    project, key = _setup(writer)
    latencies: list[float] = []
    after_answer: list[float] = []
    with SseClient.open(second.url, key) as sse:
        held = sse.next_event().version
        for i in range(10):
            sent = time.monotonic()
            writer.configure(project, "a", ENV, on=i % 2 == 0)
            answered = time.monotonic()
            event = sse.next_event(timeout=5)
            latencies.append(time.monotonic() - sent)
            after_answer.append(time.monotonic() - answered)
            assert event.name == "change"
            assert event.json()["from"] == held
            assert event.json()["flags"]["a"]["on"] is (i % 2 == 0)
            held = event.version
            time.sleep(0.15)
    print(  # the measurement is the point (pytest -s shows it)
        f"\nacross replicas, PATCH sent to replica 1 -> change on replica 2's stream: median "
        f"{statistics.median(latencies) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms; "
        f"PATCH answered -> received: median {statistics.median(after_answer) * 1000:.1f} ms, "
        f"max {max(after_answer) * 1000:.1f} ms (n={len(latencies)})"
    )
    assert max(latencies) < 3.0
    # Replica 2's snapshot endpoint agrees with what the stream delivered.
    reader = Admin.connect(second.url)
    try:
        assert reader.snapshot(key, at_least=held)["version"] == held
    finally:
        reader.close()


@pytest.mark.fault
def test_a_change_made_while_the_listener_reconnects_still_arrives(
    replicas: tuple[LockgateServer, LockgateServer], writer: Admin, module_pg_database: str
) -> None:
    _, second = replicas
    project, key = _setup(writer)
    before = _listener_pids(module_pg_database, second)
    assert len(before) == 1, "replica 2 should have exactly one listener connection"
    with SseClient.open(second.url, key) as sse:
        held = sse.next_event().version
        with psycopg.connect(module_pg_database, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(%s)", (before[0],))
        # Committed while replica 2 is not listening: its NOTIFY is lost for replica 2.
        writer.configure(project, "a", ENV, on=True)
        committed = time.monotonic()
        event = sse.next_event(timeout=8)
        elapsed = time.monotonic() - committed
        print(f"\nlistener killed -> change delivered after resync: {elapsed * 1000:.0f} ms")
        assert event.name == "change"
        assert (event.json()["from"], event.version) == (held, held + 1)
        assert event.json()["flags"]["a"]["on"] is True
        assert elapsed < 5.0
    after = _listener_pids(module_pg_database, second)
    assert len(after) == 1
    assert after != before  # a new connection
    assert "lost its connection" in second.log_text()
