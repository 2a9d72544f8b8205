"""Creating and closing many SDK clients leaves no threads behind.

Each :class:`~lockgate.sdk.networked.Client` runs a sync thread and, with events on, a
reporter thread; streams are read by the process's one shared reactor thread. Clients are
created in batches, each batch connected (READY over its stream) and then closed; at the
end the only lockgate thread left is that shared reactor. ``bench/run client-threads``
runs the same check with 10,000 clients (docs/benchmarks.md).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from lockgate.sdk import Client
from tests.engine.factories import snapshot_doc
from tests.sdk.delivery_server import KEY, eventually, running

COUNT = 1_000
BATCH = 50


def _lockgate_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("lockgate-")]


def create_and_close(
    url: str, count: int, batch: int, after_batch: Callable[[], None] = lambda: None
) -> dict[str, float]:
    """``count`` clients, ``batch`` at a time: all READY, then all closed. Returns figures."""
    started = time.monotonic()
    most = 0
    for _ in range(count // batch):
        clients = [Client(KEY, url, events_interval=3600) for _ in range(batch)]
        try:
            for client in clients:
                assert client.wait_until_ready(30), client.state
            most = max(most, threading.active_count())
        finally:
            for client in clients:
                client.close()
            after_batch()
    return {"seconds": time.monotonic() - started, "most_threads": most}


def test_creating_and_closing_many_clients_leaves_no_threads() -> None:
    with running() as server:
        server.publish(snapshot_doc())
        before = {t for t in _lockgate_threads() if t.name != "lockgate-streams"}
        # The test server's handler threads end with their streams (dropped after each batch).
        create_and_close(server.url, COUNT, BATCH, server.drop)

        def only_the_reactor_left() -> bool:
            left = [t for t in _lockgate_threads() if t not in before]
            return [t.name for t in left] in ([], ["lockgate-streams"])

        eventually(only_the_reactor_left, timeout=10)
        assert server.opened >= COUNT
