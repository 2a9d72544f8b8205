"""The networked client against a real HTTP server speaking the delivery protocol."""

from __future__ import annotations

import itertools
import json
import logging
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lockgate.sdk import (
    BackoffPolicy,
    Client,
    ErrorCode,
    Mode,
    SyncState,
    SyncTuning,
)
from tests.engine.factories import JSON, bool_flag, flags_doc, snapshot_doc, string_flag
from tests.sdk.delivery_server import KEY, DeliveryServer, eventually, running, sse

STREAM = "/sdk/v1/stream"
SNAPSHOT = "/sdk/v1/snapshot"
EVENTS = "/sdk/v1/events"
CTX = {"key": "u1"}
FAST = SyncTuning(
    backoff=BackoffPolicy(initial=0.02, cap=0.2, reset_after=60.0),
    stream_retry_interval=0.3,
    backup_interval=0.02,
)

MakeClient = Callable[..., Client]


def serving(value: str, version: int, **flags: JSON) -> JSON:
    """A snapshot whose flag ``f`` serves ``value`` (``a`` or ``b``)."""
    return flags_doc(
        string_flag("f", version=version, default={"variation": value}),
        *flags.values(),
        version=version,
    )


class Watch:
    """Waits on a client's condition, woken by its update and state listeners."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.cond = threading.Condition()
        self.changes: list[tuple[SyncState, SyncState, str]] = []
        client.on_update(lambda snapshot: self._poke())
        client.on_state_change(self._state)

    def _state(self, old: SyncState, new: SyncState, reason: str) -> None:
        with self.cond:
            self.changes.append((old, new, reason))
            self.cond.notify_all()

    def _poke(self) -> None:
        with self.cond:
            self.cond.notify_all()

    def until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        with self.cond:
            assert self.cond.wait_for(predicate, timeout), "client condition not met in time"

    def state(self, state: SyncState, timeout: float = 10.0) -> None:
        self.until(lambda: self.client.state is state, timeout)

    def version(self, version: int, timeout: float = 10.0) -> None:
        self.until(lambda: self.client.snapshot.version == version, timeout)

    @property
    def states(self) -> list[SyncState]:
        with self.cond:
            return [new for _, new, _ in self.changes]


@pytest.fixture
def server() -> Iterator[DeliveryServer]:
    with running() as delivery:
        yield delivery


@pytest.fixture
def make_client() -> Iterator[MakeClient]:
    clients: list[Client] = []

    def make(url: str, *, key: str = KEY, start: bool = True, **options: Any) -> Client:
        settings: dict[str, Any] = {
            "tuning": FAST,
            "poll_interval": 0.1,
            "events_interval": 3600.0,
            "connect_timeout": 2.0,
            "read_timeout": 5.0,
            **options,
        }
        client = Client(key, url, start=False, **settings)
        clients.append(client)
        if start:
            client.start()
        return client

    yield make
    for client in clients:
        client.close()


def started(make_client: MakeClient, url: str, **options: Any) -> tuple[Client, Watch]:
    """A client with a watch attached before its sync starts (no state change missed)."""
    client = make_client(url, start=False, **options)
    watch = Watch(client)
    client.start()
    return client, watch


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


# -- start order: backup, bootstrap, nothing ---------------------------------------------

NOWHERE = "http://127.0.0.1:9"  # never contacted: these clients are not started


def write_backup(path: Path, doc: JSON) -> Path:
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def test_backup_file_comes_first(tmp_path: Path, make_client: MakeClient) -> None:
    backup = write_backup(tmp_path / "backup.json", serving("b", 3))
    client = make_client(NOWHERE, start=False, backup_path=backup, bootstrap=serving("a", 9))
    assert client.snapshot.version == 3
    assert client.variation("f", CTX) == "b"
    assert client.state is SyncState.INITIALIZING


def test_bootstrap_without_a_backup_file(tmp_path: Path, make_client: MakeClient) -> None:
    client = make_client(
        NOWHERE, start=False, backup_path=tmp_path / "absent.json", bootstrap=serving("a", 1)
    )
    assert client.variation("f", CTX) == "a"


def test_corrupt_backup_is_ignored_for_bootstrap(
    tmp_path: Path, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    backup = tmp_path / "backup.json"
    backup.write_text('{"format": "lockgate.snapshot/1", "vers', encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="lockgate.sdk"):
        client = make_client(NOWHERE, start=False, backup_path=backup, bootstrap=serving("a", 1))
    assert client.snapshot.version == 1
    assert "ignoring the backup file" in caplog.text


def test_nothing_to_serve_returns_defaults(make_client: MakeClient) -> None:
    client = make_client(NOWHERE, start=False)
    assert not client.ready
    assert client.variation("f", CTX, "dflt") == "dflt"
    assert client.mode("f", CTX, Mode.FALLBACK) is Mode.FALLBACK
    assert client.detail("f", CTX).error_code is ErrorCode.PROVIDER_NOT_READY


def test_invalid_bootstrap_is_logged_and_ignored(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    bad = flags_doc(string_flag("f", off_variation="zzz"))
    with caplog.at_level(logging.ERROR, logger="lockgate.sdk"):
        client = make_client(NOWHERE, start=False, bootstrap=bad)
    assert not client.ready
    assert "ignoring the invalid bootstrap snapshot" in caplog.text


@pytest.mark.parametrize(
    ("key", "url"), [("", "http://127.0.0.1:1"), (KEY, "ftp://x"), (KEY, "not a url")]
)
def test_invalid_arguments(key: str, url: str) -> None:
    with pytest.raises(ValueError, match=r"sdk_key|base_url"):
        Client(key, url, start=False)


# -- getting ready, going stale, catching up ---------------------------------------------


def test_ready_when_the_server_appears_later(make_client: MakeClient) -> None:
    server = DeliveryServer()
    server.port = free_port()
    server.publish(serving("b", 4))
    client, watch = started(make_client, server.url)
    watch.state(SyncState.ERROR)  # nothing to serve and no server
    assert client.variation("f", CTX, "dflt") == "dflt"
    assert not client.wait_until_ready(0.01)
    with running(server):
        assert client.wait_until_ready(10)
        assert client.variation("f", CTX) == "b"
    assert watch.states[:2] == [SyncState.ERROR, SyncState.READY]


def test_stale_while_the_server_is_down_then_catches_up(make_client: MakeClient) -> None:
    server = DeliveryServer()
    server.publish(serving("a", 1))
    with running(server):
        client, watch = started(make_client, server.url)
        watch.state(SyncState.READY)
        assert client.variation("f", CTX) == "a"
    watch.state(SyncState.STALE)
    assert client.variation("f", CTX) == "a"  # last known good keeps serving
    server.publish(serving("b", 2))  # changed while the SDK could not see it
    with running(server):
        watch.version(2)
        watch.state(SyncState.READY)
        assert client.variation("f", CTX) == "b"
        resumed = server.seen(STREAM)[-1]
    assert resumed.header("Last-Event-ID") == "1"
    assert resumed.header("Authorization") == f"Bearer {KEY}"
    assert resumed.header("Accept") == "text/event-stream"
    assert server.seen(STREAM)[0].header("Last-Event-ID") is None


def test_first_server_snapshot_replaces_a_newer_backup(
    tmp_path: Path, server: DeliveryServer, make_client: MakeClient
) -> None:
    backup = write_backup(tmp_path / "backup.json", serving("a", 50))
    server.publish(serving("b", 2))  # e.g. the server's database was reset
    client, watch = started(make_client, server.url, backup_path=backup)
    watch.state(SyncState.READY)
    assert (client.snapshot.version, client.variation("f", CTX)) == (2, "b")
    assert server.seen(STREAM)[0].header("Last-Event-ID") is None  # backups never resume


# -- applying events ---------------------------------------------------------------------


def test_changes_are_applied_as_they_come(server: DeliveryServer, make_client: MakeClient) -> None:
    server.publish(serving("a", 1, g=bool_flag("g")))
    client, watch = started(make_client, server.url)
    watch.state(SyncState.READY)
    server.publish(serving("b", 2, g=bool_flag("g")))
    watch.version(2)
    assert client.variation("f", CTX) == "b"
    assert client.bool_variation("g", CTX, False) is True
    segment = {"key": "beta", "version": 1, "included": ["u1"]}
    server.publish(snapshot_doc({"f": string_flag("f", version=3)}, {"beta": segment}, version=3))
    watch.version(3)
    assert client.detail("g", CTX).error_code is ErrorCode.FLAG_NOT_FOUND  # removed
    assert set(client.snapshot.segments) == {"beta"}
    assert len(server.seen(STREAM)) == 1  # all on one connection


def test_a_gap_reconnects_and_resynchronises(
    server: DeliveryServer, make_client: MakeClient
) -> None:
    server.publish(serving("a", 1))
    client, watch = started(make_client, server.url)
    watch.state(SyncState.READY)
    server.send(sse("change", json.dumps({"from": 7, "version": 8, "flags": {}}), 8))
    server.wait_requests(STREAM, 2)
    assert server.seen(STREAM)[1].header("Last-Event-ID") == "1"
    assert client.snapshot.version == 1
    watch.state(SyncState.READY)
    server.publish(serving("b", 2))
    watch.version(2)
    assert SyncState.STALE in watch.states


def test_stale_and_duplicate_events_are_ignored(
    server: DeliveryServer, make_client: MakeClient
) -> None:
    server.publish(serving("a", 3))
    client, watch = started(make_client, server.url)
    watch.state(SyncState.READY)
    server.send(sse("snapshot", json.dumps(serving("b", 2)), 2))  # older
    server.send(sse("snapshot", json.dumps(serving("b", 3)), 3))  # duplicate
    server.send(sse("change", json.dumps({"from": 1, "version": 3, "flags": {"f": None}}), 3))
    server.send(sse("change", json.dumps({"from": 2, "version": 2, "flags": {"f": None}}), 2))
    server.publish(serving("b", 4))  # then a real change, on the same connection
    watch.version(4)
    assert client.variation("f", CTX) == "b"
    assert len(server.seen(STREAM)) == 1
    assert watch.states == [SyncState.READY]


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(sse("snapshot", "{not json", 2), id="bad-json"),
        pytest.param(
            sse("snapshot", json.dumps(flags_doc(string_flag(off_variation="zz"), version=2)), 2),
            id="invalid-snapshot",
        ),
        pytest.param(sse("change", json.dumps({"from": 1, "version": "x"}), 2), id="bad-change"),
        pytest.param(
            sse("change", json.dumps({"from": 1, "version": 2, "flags": {"f": {"key": "f"}}}), 2),
            id="change-making-an-invalid-snapshot",
        ),
    ],
)
def test_malformed_events_reconnect_while_old_data_serves(
    server: DeliveryServer, make_client: MakeClient, event: bytes
) -> None:
    server.publish(serving("a", 1))
    client, watch = started(make_client, server.url)
    watch.state(SyncState.READY)
    server.send(event)
    server.wait_requests(STREAM, 2)
    assert server.seen(STREAM)[1].header("Last-Event-ID") == "1"
    watch.state(SyncState.READY)
    assert watch.states[:3] == [SyncState.READY, SyncState.STALE, SyncState.READY]
    assert (client.snapshot.version, client.variation("f", CTX)) == (1, "a")


def test_malformed_twice_in_a_row_asks_for_a_full_snapshot(
    server: DeliveryServer, make_client: MakeClient
) -> None:
    server.publish(serving("a", 1))
    _, watch = started(make_client, server.url)
    watch.state(SyncState.READY)
    for count in (1, 2):
        server.wait_streams(count)
        server.send(sse("change", "{broken", 2))
    server.wait_requests(STREAM, 3)
    assert [r.header("Last-Event-ID") for r in server.seen(STREAM)] == [None, "1", None]
    watch.state(SyncState.READY)


def test_a_stream_cut_mid_event_keeps_serving_and_reconnects(
    server: DeliveryServer, make_client: MakeClient
) -> None:
    server.publish(serving("a", 1))
    client, watch = started(make_client, server.url)
    watch.state(SyncState.READY)
    server.send(b'event: snapshot\nid: 2\ndata: {"format": ')
    server.drop()
    server.wait_requests(STREAM, 2)
    watch.state(SyncState.READY)
    assert (client.snapshot.version, client.variation("f", CTX)) == (1, "a")


def test_a_cleanly_ended_stream_reconnects(server: DeliveryServer, make_client: MakeClient) -> None:
    server.publish(serving("a", 1))
    _, watch = started(make_client, server.url)
    watch.state(SyncState.READY)
    server.end()
    server.wait_requests(STREAM, 2)
    watch.state(SyncState.READY)


def test_events_of_unknown_types_are_ignored(
    server: DeliveryServer, make_client: MakeClient
) -> None:
    server.publish(serving("a", 1))
    _, watch = started(make_client, server.url)
    watch.state(SyncState.READY)
    server.send(sse("future-thing", "{}") + sse("message", "hello"))
    server.publish(serving("b", 2))
    watch.version(2)
    assert len(server.seen(STREAM)) == 1


# -- rejected keys, throttling, heartbeats -----------------------------------------------


def test_rejected_key_is_an_error_without_a_tight_loop(
    server: DeliveryServer, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    server.publish(serving("a", 1))
    with caplog.at_level(logging.ERROR, logger="lockgate.sdk"):
        client, watch = started(make_client, server.url, key="lgs_revoked")
        watch.state(SyncState.ERROR)
        first = server.wait_requests(STREAM, 1)[0].at
        threading.Event().wait(1.0)  # watch the retry rate for a second
    times = [r.at for r in server.seen(STREAM) if r.at <= first + 1.0]
    assert 2 <= len(times) <= 6  # the cap is 0.2 s: about five, never a tight loop
    assert all(gap >= 0.15 for gap in gaps(times))
    assert client.state is SyncState.ERROR
    assert caplog.text.count("rejected the SDK key") == 1  # logged once


def test_a_rejected_key_that_becomes_valid_recovers(
    server: DeliveryServer, make_client: MakeClient
) -> None:
    server.publish(serving("a", 1))
    server.key = "lgs_not_yet"
    client, watch = started(make_client, server.url)
    watch.state(SyncState.ERROR)
    server.key = KEY
    watch.state(SyncState.READY)
    assert client.variation("f", CTX) == "a"


def test_retry_after_is_honoured(server: DeliveryServer, make_client: MakeClient) -> None:
    server.publish(serving("a", 1))
    server.status[STREAM] = (503, {"Retry-After": "1"})
    _, watch = started(make_client, server.url)
    server.wait_requests(STREAM, 1)
    watch.state(SyncState.ERROR)
    server.status.clear()
    watch.state(SyncState.READY)
    first, second = (r.at for r in server.seen(STREAM)[:2])
    assert second - first >= 0.95  # not the 0.02 s backoff


def test_server_errors_back_off_with_growing_delays(
    server: DeliveryServer, make_client: MakeClient
) -> None:
    server.status[STREAM] = (500, {})
    client = make_client(server.url, start=False)
    client._sync._backoff._uniform = lambda low, high: high  # the jitter's upper end
    client.start()
    times = [r.at for r in server.wait_requests(STREAM, 7)]
    bounds = [0.02, 0.04, 0.08, 0.16, 0.2, 0.2]  # doubling from 0.02 s to the 0.2 s cap
    assert all(gap >= bound - 0.005 for gap, bound in zip(gaps(times), bounds, strict=True))
    assert client.state is SyncState.ERROR


def test_a_silent_stream_is_dead_after_the_read_timeout(
    server: DeliveryServer, make_client: MakeClient
) -> None:
    server.publish(serving("a", 1))
    server.hydrate = False  # headers, `retry:`, then silence
    started(make_client, server.url, read_timeout=0.3)
    times = [r.at for r in server.wait_requests(STREAM, 2)]
    assert times[1] - times[0] >= 0.3


def test_heartbeats_keep_the_stream_alive(server: DeliveryServer, make_client: MakeClient) -> None:
    server.publish(serving("a", 1))
    server.ping_interval = 0.05
    _, watch = started(make_client, server.url, read_timeout=0.4)
    watch.state(SyncState.READY)
    threading.Event().wait(1.2)  # three read timeouts long
    assert len(server.seen(STREAM)) == 1
    assert watch.states == [SyncState.READY]


# -- polling -----------------------------------------------------------------------------


def test_polling_when_streaming_is_disabled(
    server: DeliveryServer, make_client: MakeClient
) -> None:
    server.publish(serving("a", 1))
    client, watch = started(make_client, server.url, stream=False)
    watch.state(SyncState.READY)
    polls = server.wait_requests(SNAPSHOT, 2)
    assert polls[0].header("If-None-Match") is None
    assert polls[1].header("If-None-Match") == '"1"'  # answered 304
    server.publish(serving("b", 2))
    watch.version(2)
    assert client.variation("f", CTX) == "b"
    assert server.seen(STREAM) == []
    assert watch.states == [SyncState.READY]


def test_falls_back_to_polling_when_the_stream_is_refused(
    server: DeliveryServer, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    server.publish(serving("a", 1))
    server.status[STREAM] = (404, {})  # e.g. a proxy that does not route the stream
    with caplog.at_level(logging.WARNING, logger="lockgate.sdk"):
        client, watch = started(make_client, server.url)
        watch.state(SyncState.READY)
    assert len(server.seen(STREAM)) == 3
    assert "polling every 0.1 s meanwhile" in caplog.text
    server.publish(serving("b", 2))
    watch.version(2)
    server.wait_requests(STREAM, 5)  # tried again every stream_retry_interval...
    assert watch.states == [SyncState.ERROR, SyncState.READY]  # ...without flapping to STALE
    server.status.clear()
    server.wait_streams(1)  # and streaming again once it works
    server.publish(serving("a", 3))
    watch.version(3)
    assert client.variation("f", CTX) == "a"


def test_a_server_that_is_down_does_not_switch_to_polling(make_client: MakeClient) -> None:
    client, watch = started(make_client, f"http://127.0.0.1:{free_port()}")
    watch.state(SyncState.ERROR)
    eventually(lambda: client._sync._backoff.attempt >= 5)
    assert client._sync._stream_failures == 0


def test_rejected_key_while_polling(server: DeliveryServer, make_client: MakeClient) -> None:
    server.key = "lgs_other"
    _, watch = started(make_client, server.url, stream=False)
    watch.state(SyncState.ERROR)


# -- close -------------------------------------------------------------------------------


def test_close_is_prompt_idempotent_and_evaluation_keeps_working(
    server: DeliveryServer, make_client: MakeClient
) -> None:
    server.publish(serving("a", 1))
    server.ping_interval = 0.05  # lets the server notice when the client goes
    client, watch = started(make_client, server.url, read_timeout=30.0)
    watch.state(SyncState.READY)
    server.wait_streams(1)  # the sync thread is blocked reading the stream
    began = time.monotonic()
    client.close()
    assert time.monotonic() - began < 1.0
    assert not client._sync.alive
    client.close()
    assert client.state is SyncState.CLOSED
    assert client.variation("f", CTX) == "a"
    assert not client.wait_until_ready(5)  # returns at once once closed
    with pytest.raises(RuntimeError, match="closed"):
        client.start()
    server.wait(lambda: not server.streams)  # the server saw the connection go


def test_close_while_backing_off(make_client: MakeClient) -> None:
    tuning = SyncTuning(backoff=BackoffPolicy(initial=30.0, cap=30.0))
    client, watch = started(make_client, f"http://127.0.0.1:{free_port()}", tuning=tuning)
    watch.state(SyncState.ERROR)
    began = time.monotonic()
    client.close()
    assert time.monotonic() - began < 1.0
    assert not client._sync.alive


def test_context_manager_closes(server: DeliveryServer) -> None:
    server.publish(serving("a", 1))
    with Client(KEY, server.url, tuning=FAST, events=False) as client:
        assert client.wait_until_ready(10)
    assert client.state is SyncState.CLOSED


# -- listeners ---------------------------------------------------------------------------


def test_state_listeners_get_old_new_and_reason(
    server: DeliveryServer, make_client: MakeClient
) -> None:
    server.publish(serving("a", 1))
    client, watch = started(make_client, server.url)
    watch.state(SyncState.READY)
    client.close()
    (old, new, reason), (old2, new2, reason2) = watch.changes
    assert (old, new) == (SyncState.INITIALIZING, SyncState.READY)
    assert reason == "snapshot received; version 1"
    assert (old2, new2, reason2) == (SyncState.READY, SyncState.CLOSED, "closed")


def test_failing_listeners_do_not_stop_sync(
    server: DeliveryServer, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("listener bug")

    server.publish(serving("a", 1))
    client = make_client(server.url, start=False)
    client.on_update(broken)
    client.on_state_change(broken)
    watch = Watch(client)
    with caplog.at_level(logging.ERROR, logger="lockgate.sdk"):
        client.start()
        watch.state(SyncState.READY)
        server.publish(serving("b", 2))
        watch.version(2)
    assert "listener bug" in caplog.text


def test_close_from_a_listener_on_the_sync_thread(
    server: DeliveryServer, make_client: MakeClient
) -> None:
    server.publish(serving("a", 1))
    client = make_client(server.url, start=False)
    closed = threading.Event()

    def close_when_ready(old: SyncState, new: SyncState, reason: str) -> None:
        if new is SyncState.READY:
            client.close()
            closed.set()

    client.on_state_change(close_when_ready)
    client.start()
    assert closed.wait(10)
    eventually(lambda: not client._sync.alive)
    assert client.state is SyncState.CLOSED
    assert client.variation("f", CTX) == "a"


# -- backup file -------------------------------------------------------------------------


def test_backup_is_written_after_updates_and_used_next_time(
    tmp_path: Path, server: DeliveryServer, make_client: MakeClient
) -> None:
    backup = tmp_path / "backup.json"
    server.publish(serving("a", 1))
    client, watch = started(make_client, server.url, backup_path=backup)
    watch.state(SyncState.READY)
    server.publish(serving("b", 2))
    watch.version(2)
    client.close()  # writes anything still pending
    assert json.loads(backup.read_text(encoding="utf-8"))["version"] == 2
    assert [p.name for p in tmp_path.iterdir()] == ["backup.json"]
    offline = make_client(NOWHERE, start=False, backup_path=backup)
    assert offline.variation("f", CTX) == "b"


# -- evaluation counts -------------------------------------------------------------------


def counted(server: DeliveryServer) -> dict[tuple[str, str | None, str], int]:
    totals: dict[tuple[str, str | None, str], int] = {}
    with server.cond:
        for body in server.events:
            for row in body["counts"]:
                key = (row["flag"], row["variation"], row["reason"])
                totals[key] = totals.get(key, 0) + row["count"]
    return totals


def test_counts_are_sent_in_batches(server: DeliveryServer, make_client: MakeClient) -> None:
    server.publish(serving("a", 1, g=bool_flag("g")))
    client, watch = started(make_client, server.url, events_interval=0.05)
    watch.state(SyncState.READY)
    for _ in range(5):
        client.variation("f", CTX)
    client.bool_variation("g", CTX, False)
    client.string_variation("g", CTX, "x")  # type mismatch
    client.mode("nope", CTX)
    client.detail("f", CTX)  # the raw fast path is not counted
    server.wait(lambda: sum(counted(server).values()) >= 8)
    assert counted(server) == {
        ("f", "a", "FALLTHROUGH"): 5,
        ("g", "on", "FALLTHROUGH"): 1,
        ("g", None, "ERROR"): 1,
        ("nope", None, "ERROR"): 1,
    }
    body = server.events[0]
    assert body["sdk"]["name"] == "lockgate-python"
    assert server.seen(EVENTS)[0].header("Authorization") == f"Bearer {KEY}"


def test_counts_are_kept_when_sending_fails_and_flushed_on_close(
    server: DeliveryServer, make_client: MakeClient
) -> None:
    server.publish(serving("a", 1))
    client, watch = started(make_client, server.url)
    watch.state(SyncState.READY)
    server.status[EVENTS] = (503, {})
    client.variation("f", CTX)
    assert client.flush_counts() is False
    server.status.clear()
    client.variation("f", CTX)
    client.close()
    assert counted(server) == {("f", "a", "FALLTHROUGH"): 2}
    assert len(server.events) == 1


def test_counts_refused_for_good_are_dropped(
    server: DeliveryServer, make_client: MakeClient
) -> None:
    server.publish(serving("a", 1))
    client = make_client(server.url)
    server.status[EVENTS] = (400, {})
    client.variation("f", CTX)
    assert client.flush_counts() is True
    server.status.clear()
    assert client.flush_counts() is True
    assert server.events == []


def test_counts_are_not_sent_before_the_server_is_reachable(make_client: MakeClient) -> None:
    client = make_client(f"http://127.0.0.1:{free_port()}", bootstrap=serving("a", 1))
    client.variation("f", CTX)
    assert client.flush_counts(timeout=1.0) is False  # kept for later


def test_no_counting_when_events_are_off(server: DeliveryServer, make_client: MakeClient) -> None:
    server.publish(serving("a", 1))
    client = make_client(server.url, events=False)
    assert client.wait_until_ready(10)
    assert client.variation("f", CTX) == "a"
    assert client.flush_counts() is True
    client.close()
    assert server.seen(EVENTS) == []


# -- no server code, no dependencies -----------------------------------------------------


def test_the_sdk_imports_only_the_standard_library() -> None:
    code = (
        "import sys; before = set(sys.modules); import lockgate.sdk; "
        "print(*sorted(set(sys.modules) - before))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    assert "lockgate.sdk.networked" in loaded
    top = {name.partition(".")[0] for name in loaded}
    assert top - {"lockgate"} <= sys.stdlib_module_names
    ours = {name.split(".")[1] for name in loaded if name.startswith("lockgate.")}
    assert ours <= {"engine", "sdk", "decisionlog", "privacy"}  # the pure shared packages
