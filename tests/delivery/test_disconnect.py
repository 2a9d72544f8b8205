"""Clients that go away: the app under a real uvicorn (in a thread) must forget their streams.

The hub is inspected on its own loop, so these run in process; the server is stopped at
the end of each test (and would cancel any response still running after two seconds).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import uvicorn
from fastapi import FastAPI

from lockgate.api.app import create_app
from lockgate.control.base import Services, system_caller
from lockgate.control.configuration import projects as project_use
from lockgate.control.identity import sdk_keys as key_use
from lockgate.delivery.hub import DeliveryHub
from lockgate.settings import Settings
from tests.delivery.sse import SseClient

CALLER = system_caller("delivery-test")


@dataclass
class InThreadServer:
    url: str
    app: FastAPI
    key: str

    @property
    def hub(self) -> DeliveryHub:
        hub: DeliveryHub = self.app.state.hub
        return hub

    def stream_count(self) -> int:
        """Counted on the hub's loop (its sets change there)."""
        loop = self.hub.loop
        assert loop is not None

        async def count() -> int:
            return self.hub.stream_count()

        return asyncio.run_coroutine_threadsafe(count(), loop).result(5)

    def wait_for_streams(self, expected: int, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while self.stream_count() != expected:
            assert time.monotonic() < deadline, f"{self.stream_count()} streams, not {expected}"
            time.sleep(0.02)


@pytest.fixture
def live(
    settings: Settings, services: Services, request: pytest.FixtureRequest
) -> Iterator[InThreadServer]:
    """The app under uvicorn; heartbeats every second unless parametrized otherwise."""
    heartbeat = int(getattr(request, "param", 1))
    project_use.create_project(services, CALLER, "shop", "Shop")
    project_use.create_environment(services, CALLER, "shop", "prod")
    key = key_use.create_sdk_key(services, CALLER, "shop", "prod", kind="server")["key"]
    app = create_app(settings.with_overrides(stream_heartbeat_seconds=heartbeat), services)
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


@pytest.mark.fault
def test_streams_are_forgotten_when_clients_disconnect(live: InThreadServer) -> None:
    clients = [SseClient.open(live.url, live.key) for _ in range(3)]
    for client in clients:
        assert client.next_event().name == "snapshot"
    live.wait_for_streams(3)
    clients[0].close()
    live.wait_for_streams(2)
    for client in clients[1:]:
        client.close()
    live.wait_for_streams(0)


@pytest.mark.fault
@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_client_that_leaves_before_the_response_starts_leaves_nothing(
    live: InThreadServer,
) -> None:
    host, port = live.url.removeprefix("http://").split(":")
    for _ in range(5):
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(
                f"GET /sdk/v1/stream HTTP/1.1\r\nHost: {host}\r\n"
                f"Authorization: Bearer {live.key}\r\n\r\n".encode()
            )
    time.sleep(0.3)
    live.wait_for_streams(0)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_streams_work_through_the_request_limits_with_an_empty_body(
    live: InThreadServer,
) -> None:
    """A GET with ``Content-Length: 0`` makes the limits middleware read (and replay) the
    body; the stream must still be delivered, and still be noticed when the client leaves."""
    with SseClient.open(live.url, live.key, headers=[("Content-Length", "0")]) as sse:
        assert sse.headers["x-request-id"]
        assert sse.next_event().name == "snapshot"
        pings = [i for i in sse.items_for(1.5) if i.kind == "comment"]
        assert pings
        live.wait_for_streams(1)
    live.wait_for_streams(0)


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize("live", [0], indirect=True)
def test_a_heartbeat_setting_of_zero_turns_heartbeats_off(live: InThreadServer) -> None:
    with SseClient.open(live.url, live.key) as sse:
        assert sse.next_event().name == "snapshot"
        assert sse.items_for(1.5) == []
