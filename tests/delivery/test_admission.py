"""Stream admission: a cap on open streams and on new streams per second, shed with 503."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn

from lockgate.api.app import create_app
from lockgate.control.base import Services
from lockgate.control.configuration import projects as project_use
from lockgate.control.identity import sdk_keys as key_use
from lockgate.delivery.admission import RETRY_AFTER_SPREAD, StreamAdmission
from lockgate.settings import Settings
from tests.delivery.sse import SseClient
from tests.delivery.test_disconnect import CALLER, InThreadServer


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_new_streams_are_limited_per_second_with_bursts_of_one_second() -> None:
    clock = Clock()
    admission = StreamAdmission(0, 10, clock=clock, rng=random.Random(1))
    assert [admission.admit(0) for _ in range(12)].count(None) == 10
    clock.now += 0.5
    assert [admission.admit(0) for _ in range(10)].count(None) == 5
    clock.now += 60  # a quiet minute refills one second's worth, no more
    assert [admission.admit(0) for _ in range(20)].count(None) == 10
    assert admission.refused == 2 + 5 + 10


def test_open_streams_are_capped_and_retry_after_is_spread() -> None:
    admission = StreamAdmission(3, 0, rng=random.Random(2))
    assert admission.admit(2) is None
    reason = admission.admit(3)
    assert reason is not None
    assert "maximum of 3" in reason
    delays = {admission.retry_after() for _ in range(200)}
    assert delays == set(range(1, RETRY_AFTER_SPREAD + 1))


def test_no_limits_when_both_are_zero() -> None:
    admission = StreamAdmission(0, 0)
    assert all(admission.admit(10**6) is None for _ in range(10_000))
    with pytest.raises(ValueError, match="negative"):
        StreamAdmission(-1, 0)


@pytest.fixture
def capped(settings: Settings, services: Services) -> Iterator[InThreadServer]:
    project_use.create_project(services, CALLER, "shop", "Shop")
    project_use.create_environment(services, CALLER, "shop", "prod")
    key = key_use.create_sdk_key(services, CALLER, "shop", "prod", kind="server")["key"]
    app = create_app(settings.with_overrides(max_streams=2), services)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield InThreadServer(f"http://127.0.0.1:{port}", app, key)
    finally:
        server.should_exit = True
        thread.join(10)
        assert not thread.is_alive()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_streams_beyond_the_cap_get_503_with_retry_after(capped: InThreadServer) -> None:
    opened = [SseClient.open(capped.url, capped.key) for _ in range(2)]
    try:
        for client in opened:
            assert client.next_event().name == "snapshot"
        capped.wait_for_streams(2)
        refused = SseClient.open(capped.url, capped.key)
        assert refused.status == 503
        assert 1 <= int(refused.headers["retry-after"]) <= RETRY_AFTER_SPREAD
        assert refused.json()["code"] == "streams_busy"
        refused.close()
        opened.pop().close()
        capped.wait_for_streams(1)
        again = SseClient.open(capped.url, capped.key)
        opened.append(again)
        assert again.status == 200
    finally:
        for client in opened:
            client.close()
