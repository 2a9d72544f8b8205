"""The replica change listener against a real PostgreSQL database."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest

from lockgate.control.configuration.snapshots import CHANGE_CHANNEL
from lockgate.delivery.pg_notify import APPLICATION_NAME, ChangeListener, parse_payload


def test_parse_payload() -> None:
    assert parse_payload("12:345") == 12
    for bad in ("", "12", "12:", ":3", "a:1", "1:b", "-1:2", "1:2:3"):
        assert parse_payload(bad) is None, bad


class Recorder:
    def __init__(self) -> None:
        self.changes: list[int] = []
        self.resyncs = 0
        self.lock = threading.Lock()

    def on_change(self, environment_ids: list[int]) -> None:
        with self.lock:
            self.changes.extend(environment_ids)

    def on_resync(self) -> None:
        with self.lock:
            self.resyncs += 1


def _eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


@pytest.fixture
def listening(pg_database: str) -> Iterator[tuple[ChangeListener, Recorder]]:
    recorder = Recorder()
    listener = ChangeListener(
        pg_database, recorder.on_change, recorder.on_resync, resync_interval=60.0
    )
    listener.start()
    try:
        assert listener.connected.wait(10)
        yield listener, recorder
    finally:
        listener.stop()
        assert not listener._thread.is_alive()


def _notify(url: str, payload: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_notify(%s, %s)", (CHANGE_CHANNEL, payload))


def _listener_backends(url: str) -> list[int]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s",
            (f"{APPLICATION_NAME}/{os.getpid()}",),
        ).fetchall()
    return [int(r[0]) for r in rows]


@pytest.mark.postgres
def test_notifications_reach_the_callback(
    listening: tuple[ChangeListener, Recorder], pg_database: str
) -> None:
    _, recorder = listening
    assert recorder.resyncs == 1  # on connecting
    _notify(pg_database, "7:3")
    _notify(pg_database, "garbage")
    _notify(pg_database, "8:1")
    _eventually(lambda: recorder.changes == [7, 8])


@pytest.mark.postgres
@pytest.mark.fault
def test_a_killed_connection_is_reopened_and_resynchronised(
    listening: tuple[ChangeListener, Recorder], pg_database: str
) -> None:
    listener, recorder = listening

    def resynced(times: int) -> Callable[[], bool]:
        return lambda: recorder.resyncs == times

    for expected_resyncs in (2, 3):  # and again, once it is back
        [backend] = _listener_backends(pg_database)
        with psycopg.connect(pg_database, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(%s)", (backend,))
        _eventually(resynced(expected_resyncs))
        assert listener.connected.is_set()
        assert _listener_backends(pg_database) not in ([], [backend])
    _notify(pg_database, "9:1")
    _eventually(lambda: recorder.changes == [9])
