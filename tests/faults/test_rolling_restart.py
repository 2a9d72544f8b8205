"""A rolling restart of two replicas under a steady client loop fails no request.

Each replica in turn gets SIGTERM (it stops accepting, finishes what it is doing, ends its
SDK streams and exits), is started again on the same port and, once ready, the other one
follows. Meanwhile a client loop sends snapshot polls and remote evaluations through the
SDK's failover transport (both replicas' URLs), and a streaming SDK client, given both
URLs, stays current.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lockgate.sdk import Client, SyncTuning
from lockgate.sdk.backoff import BackoffPolicy
from lockgate.sdk.failover import FailoverTransport
from lockgate.sdk.transport import HttpTransport
from tests.delivery.servers import Admin, LockgateServer, free_port, start_lockgate, unique

pytestmark = [pytest.mark.postgres, pytest.mark.fault]

ENV = "prod"
SHUTDOWN_TIMEOUT = 5


class ClientLoop(threading.Thread):
    """Requests back to back (a snapshot poll, then a remote evaluation) until stopped."""

    def __init__(self, urls: list[str], key: str) -> None:
        super().__init__(name="client-loop", daemon=True)
        self.transport = FailoverTransport(
            [
                HttpTransport(
                    url, key, connect_timeout=2, read_timeout=5, user_agent="loop", proxy=""
                )
                for url in urls
            ]
        )
        self.ok = 0
        self.failures: list[str] = []
        self.halt = threading.Event()

    def run(self) -> None:
        poll = True
        while not self.halt.is_set():
            try:
                if poll:
                    self.transport.request("GET", "/sdk/v1/snapshot")
                else:
                    body = {"context": {"key": f"user-{self.ok}"}}
                    self.transport.request(
                        "POST", "/sdk/v1/evaluate", json_body=body, idempotent=True
                    )
                self.ok += 1
            except Exception as exc:
                self.failures.append(repr(exc))
            poll = not poll
            self.halt.wait(0.005)


@pytest.fixture
def replicas(pg_database: str, tmp_path: Path) -> Iterator[list[LockgateServer]]:
    extra = ("--shutdown-timeout-seconds", str(SHUTDOWN_TIMEOUT))
    started: list[LockgateServer] = []
    try:
        for name in ("replica1", "replica2"):
            server = start_lockgate(
                tmp_path, database_url=pg_database, name=name, extra=extra, port=free_port()
            )
            started.append(server)
        yield started
    finally:
        for server in started:
            server.stop()


def test_a_rolling_restart_fails_no_request(
    replicas: list[LockgateServer], pg_database: str, tmp_path: Path
) -> None:
    urls = [server.url for server in replicas]
    admin = Admin.connect(urls[0])
    project = unique("p")
    admin.project(project, ENV)
    admin.flag(project, "a")
    key, _ = admin.sdk_key(project, ENV)
    admin.close()
    loop = ClientLoop(urls, key)
    tuning = SyncTuning(backoff=BackoffPolicy(initial=0.2, cap=2.0))
    sdk = Client(key, urls, events=False, tuning=tuning)
    stops: list[float] = []
    try:
        assert sdk.wait_until_ready(10)
        loop.start()
        time.sleep(0.5)
        for index, server in enumerate(list(replicas)):
            signalled = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            server.process.wait(SHUTDOWN_TIMEOUT + 10)
            stops.append(time.monotonic() - signalled)
            assert "Traceback" not in server.log_text()
            port = int(server.url.rsplit(":", 1)[1])
            extra = ("--shutdown-timeout-seconds", str(SHUTDOWN_TIMEOUT))
            replicas[index] = start_lockgate(
                tmp_path,
                database_url=pg_database,
                name=f"replica{index + 1}",
                extra=extra,
                port=port,
            )
            time.sleep(0.5)  # both replicas serve again before the next one goes
        before = loop.ok
        time.sleep(0.3)
        assert loop.ok > before, "the loop no longer gets answers"
    finally:
        loop.halt.set()
        loop.join(10)
    try:
        assert loop.failures == [], loop.failures[:5]
        assert loop.ok > 100
        # The streaming SDK followed the restarts: a change made now reaches it.
        held = sdk.detail("a", {}, False).flag_version
        assert held is not None
        writer = Admin.connect(replicas[1].url)
        try:
            writer.configure(project, "a", ENV, on=True)
        finally:
            writer.close()
        deadline = time.monotonic() + 10
        while sdk.detail("a", {}, False).flag_version == held and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (sdk.detail("a", {}, False).flag_version or 0) > held
    finally:
        sdk.close()
    print(  # the measurement is the point (pytest -s shows it)
        f"\nrolling restart: {loop.ok} requests, {len(loop.failures)} failed, "
        f"{loop.transport.failovers} moved to the other replica; SIGTERM to exit: "
        + ", ".join(f"{s * 1000:.0f} ms" for s in stops)
    )
