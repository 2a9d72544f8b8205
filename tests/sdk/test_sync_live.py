"""The SDK against a real ``lockgate serve``: sync, server death, restart, catch-up, proxy.

The server runs as a subprocess (SQLite in a temporary data directory, one-second
heartbeats); flags and the SDK key are made through the management API. The server is
stopped by its PID and restarted on the same port and data directory.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from lockgate.sdk import BackoffPolicy, Client, SyncState, SyncTuning
from tests.delivery import servers
from tests.delivery.servers import Admin, LockgateServer, free_port, lockgate_server
from tests.sdk.forward_proxy import proxying

pytestmark = pytest.mark.fault

PROJECT = "shop"
ENV = "prod"
CTX = {"key": "u1"}
TUNING = SyncTuning(backoff=BackoffPolicy(initial=0.05, cap=0.5), backup_interval=0.05)


@contextmanager
def serve(data_dir: Path, port: int, monkeypatch: pytest.MonkeyPatch) -> Iterator[LockgateServer]:
    """``lockgate serve`` on ``port`` (the helper picks a free port; here it must not)."""
    with monkeypatch.context() as patch:
        patch.setattr(servers, "free_port", lambda: port)
        with lockgate_server(data_dir, heartbeat=1) as server:
            yield server


def state_of(client: Client) -> SyncState:
    """The state now (a call: mypy would keep ``client.state`` narrowed from before)."""
    return client.state


class Seen:
    """Wakes on the client's updates and state changes; waits for a condition."""

    def __init__(self, client: Client) -> None:
        self.cond = threading.Condition()
        client.on_update(lambda snapshot: self._poke())
        client.on_state_change(lambda old, new, reason: self._poke())

    def _poke(self) -> None:
        with self.cond:
            self.cond.notify_all()

    def until(self, predicate: Callable[[], bool], timeout: float = 20.0) -> None:
        with self.cond:
            assert self.cond.wait_for(predicate, timeout), "client condition not met in time"


def test_sdk_follows_a_real_server_through_death_and_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    data_dir = tmp_path / "data"
    backup = tmp_path / "sdk-backup.json"
    with serve(data_dir, port, monkeypatch) as server:
        admin = Admin.connect(server.url)
        admin.project(PROJECT, ENV)
        admin.flag(PROJECT, "checkout")
        admin.configure(PROJECT, "checkout", ENV, on=True, default={"variation": "on"})
        key, _ = admin.sdk_key(PROJECT, ENV)
        client = Client(
            key, server.url, backup_path=backup, read_timeout=3.0, tuning=TUNING, start=False
        )
        seen = Seen(client)
        client.start()
        try:
            assert client.wait_until_ready(20)
            assert client.bool_variation("checkout", CTX, False) is True

            admin.configure(PROJECT, "checkout", ENV, on=False)  # a change, streamed
            seen.until(lambda: client.snapshot.flags["checkout"].on is False)
            assert client.bool_variation("checkout", CTX, True) is False
            admin.close()

            server.stop()  # dies: the stream breaks, values keep serving
            seen.until(lambda: client.state is SyncState.STALE)
            assert client.bool_variation("checkout", CTX, True) is False
            held = client.snapshot.version

            # Changed while the SDK cannot see it (the same data directory, offline)...
            with serve(data_dir, free_port(), monkeypatch) as elsewhere:
                other = Admin.connect(elsewhere.url)
                other.configure(PROJECT, "checkout", ENV, on=True)
                other.close()
            assert client.state is SyncState.STALE

            # ...then back on the SDK's port: it reconnects and catches up.
            with serve(data_dir, port, monkeypatch) as again:
                seen.until(lambda: client.snapshot.flags["checkout"].on is True)
                seen.until(lambda: client.state is SyncState.READY)
                assert client.snapshot.version > held
                assert client.bool_variation("checkout", CTX, False) is True
                assert client.flush_counts(timeout=5.0)  # the server accepts the counts
                check_polling(again.url, key)
        finally:
            client.close()
    assert state_of(client) is SyncState.CLOSED
    restarted = Client(key, "http://127.0.0.1:9", backup_path=backup, start=False)
    assert restarted.snapshot.version == client.snapshot.version  # from the backup file
    assert restarted.snapshot.flags == client.snapshot.flags


def check_polling(url: str, key: str) -> None:
    """A polling client (ETag / 304) follows a change too."""
    with Client(key, url, stream=False, poll_interval=0.1, tuning=TUNING, start=False) as poller:
        seen = Seen(poller)
        poller.start()
        assert poller.wait_until_ready(20)
        assert poller.bool_variation("checkout", CTX, False) is True
        admin = Admin.connect(url)
        admin.configure(PROJECT, "checkout", ENV, on=False)
        admin.close()
        seen.until(lambda: poller.snapshot.flags["checkout"].on is False)
        assert poller.state is SyncState.READY


def test_sdk_behind_a_proxy_follows_a_real_server(tmp_path: Path) -> None:
    with lockgate_server(tmp_path / "data", heartbeat=1) as server, proxying() as proxy:
        admin = Admin.connect(server.url)
        admin.project(PROJECT, ENV)
        admin.flag(PROJECT, "checkout")
        admin.configure(PROJECT, "checkout", ENV, on=True, default={"variation": "on"})
        key, _ = admin.sdk_key(PROJECT, ENV)
        with Client(key, server.url, proxy=proxy.url, tuning=TUNING, start=False) as client:
            seen = Seen(client)
            client.start()
            assert client.wait_until_ready(20)
            assert client.bool_variation("checkout", CTX, False) is True
            admin.configure(PROJECT, "checkout", ENV, on=False)  # streamed through the proxy
            seen.until(lambda: client.snapshot.flags["checkout"].on is False)
            assert client.state is SyncState.READY
        admin.close()
    assert proxy.methods()[0] == f"GET {server.url}/sdk/v1/stream"
    assert not proxy.errors
