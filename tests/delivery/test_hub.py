"""The delivery hub in process: loading, notifications, catch-up events, streams, revocation.

Each test runs its own event loop (``asyncio.run``) with a hub on the real store; data is
written through the control layer, as the API would. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Awaitable, Callable, Coroutine, MutableMapping
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import delete, select, update

from lockgate.control.base import Services, system_caller
from lockgate.control.configuration import flags as flag_use
from lockgate.control.configuration import projects as project_use
from lockgate.control.identity import sdk_keys as key_use
from lockgate.delivery import hub as hub_module
from lockgate.delivery.hub import DeliveryHub, EnvironmentState
from lockgate.delivery.stream import serve_stream
from lockgate.errors import Unauthenticated
from lockgate.store.tables import environments, sdk_keys

CALLER = system_caller("delivery-test")
_flags = itertools.count(1)

SQLITE = pytest.mark.parametrize("backend", ["sqlite"])  # the rest run on both backends


@dataclass(frozen=True)
class Seeded:
    environment_id: int
    key_id: int
    key: str


def seed(services: Services) -> Seeded:
    project_use.create_project(services, CALLER, "shop", "Shop")
    project_use.create_environment(services, CALLER, "shop", "prod")
    flag_use.create_flag(services, CALLER, "shop", {"key": "a", "kind": "boolean"})
    created = key_use.create_sdk_key(services, CALLER, "shop", "prod", kind="server")
    with services.view() as conn:
        environment_id = conn.execute(
            select(environments.c.id).where(environments.c.key == "prod")
        ).scalar_one()
        key_id = conn.execute(
            select(sdk_keys.c.id).where(sdk_keys.c.prefix == created["prefix"])
        ).scalar_one()
    return Seeded(environment_id, key_id, created["key"])


def change(services: Services) -> None:
    """One committed change of the environment (a new flag)."""
    flag_use.create_flag(services, CALLER, "shop", {"key": f"c{next(_flags)}", "kind": "boolean"})


def run(coroutine: Coroutine[Any, Any, None], timeout: float = 20.0) -> None:
    asyncio.run(asyncio.wait_for(coroutine, timeout))


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def in_thread(func: Callable[[], object]) -> None:
    await asyncio.to_thread(func)


def started_hub(services: Services, **options: Any) -> Callable[[], Awaitable[DeliveryHub]]:
    async def start() -> DeliveryHub:
        hub = DeliveryHub(services, **options)
        await hub.start()
        return hub

    return start


# -- loading ----------------------------------------------------------------------------


@SQLITE
def test_first_requests_load_once_and_survive_a_requester_going_away(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded = seed(services)

    async def main() -> None:
        hub = await started_hub(services)()
        gate = threading.Event()
        loads = 0
        original = hub._load

        def slow_load(environment_id: int) -> tuple[int, dict[str, Any]]:
            nonlocal loads
            loads += 1
            gate.wait(5)
            return original(environment_id)

        monkeypatch.setattr(hub, "_load", slow_load)
        first = asyncio.create_task(hub.state(seeded.environment_id))
        await asyncio.sleep(0.05)
        others = [asyncio.create_task(hub.state(seeded.environment_id)) for _ in range(5)]
        await asyncio.sleep(0.05)
        first.cancel()  # the first requester disconnects while the load runs
        gate.set()
        states = await asyncio.wait_for(asyncio.gather(*others), 5)
        assert loads == 1
        assert all(s is states[0] for s in states)
        assert hub.states[seeded.environment_id] is states[0]
        await hub.stop()

    run(main())


@SQLITE
def test_a_commit_during_the_first_load_is_not_lost(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded = seed(services)

    async def main() -> None:
        hub = await started_hub(services)()
        original = hub._load
        calls = 0

        def racing_load(environment_id: int) -> tuple[int, dict[str, Any]]:
            nonlocal calls
            calls += 1
            loaded = original(environment_id)
            if calls == 1:
                change(services)  # committed (and notified) after the load read its version
            return loaded

        monkeypatch.setattr(hub, "_load", racing_load)
        state = await hub.state(seeded.environment_id)
        stale = state.version
        await eventually(lambda: state.version == stale + 1)
        await hub.stop()

    run(main())


@SQLITE
def test_the_state_follows_commits_and_wakes_streams(services: Services) -> None:
    seeded = seed(services)

    async def main() -> None:
        hub = await started_hub(services)()
        state = await hub.state(seeded.environment_id)
        stream = hub.attach(state, seeded.key_id)
        before = state.version
        await in_thread(lambda: change(services))
        await asyncio.wait_for(stream.wake.wait(), 5)
        assert state.version == before + 1
        assert f'"version":{before + 1}' in state.text
        assert len(state.compiled_snapshot().flags) == len(state.document["flags"])
        await hub.stop()
        assert not stream.is_open()  # stopping the hub ends its streams

    run(main())


@SQLITE
def test_a_burst_of_commits_is_merged_into_few_reloads(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded = seed(services)

    async def main() -> None:
        hub = await started_hub(services, min_refresh_interval=0.2)()
        state = await hub.state(seeded.environment_id)
        loads = 0
        original = hub._load

        def counting_load(environment_id: int) -> tuple[int, dict[str, Any]]:
            nonlocal loads
            loads += 1
            return original(environment_id)

        monkeypatch.setattr(hub, "_load", counting_load)
        before = state.version

        def burst() -> None:
            for _ in range(10):
                change(services)

        await in_thread(burst)
        await eventually(lambda: state.version == before + 10)
        assert loads < 10
        await hub.stop()

    run(main())


# -- catch-up events --------------------------------------------------------------------


@SQLITE
def test_a_catch_up_is_built_once_and_survives_a_stream_going_away(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded = seed(services)

    async def main() -> None:
        hub = await started_hub(services)()
        state = await hub.state(seeded.environment_id)
        since = state.version
        for _ in range(3):
            await in_thread(lambda: change(services))
        await eventually(lambda: state.version == since + 3)
        gate = threading.Event()
        builds = 0
        original = hub._changed_keys

        def slow_changed_keys(*args: int) -> Any:
            nonlocal builds
            builds += 1
            gate.wait(5)
            return original(*args)

        monkeypatch.setattr(hub, "_changed_keys", slow_changed_keys)
        first = asyncio.create_task(hub.catch_up(state, since))
        await asyncio.sleep(0.05)
        others = [asyncio.create_task(hub.catch_up(state, since)) for _ in range(5)]
        await asyncio.sleep(0.05)
        first.cancel()
        gate.set()
        events = await asyncio.wait_for(asyncio.gather(*others), 5)
        assert builds == 1
        assert all(e is events[0] for e in events)
        event = events[0]
        assert (event.name, event.version) == ("change", since + 3)
        assert event.data.startswith(f"id: {since + 3}\nevent: change\ndata: ".encode())
        assert event.data.endswith(b"\n\n")
        assert await hub.catch_up(state, since) is event  # cached
        await hub.stop()

    run(main())


@SQLITE
def test_a_failed_catch_up_is_not_cached(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded = seed(services)

    async def main() -> None:
        hub = await started_hub(services)()
        state = await hub.state(seeded.environment_id)
        since = state.version
        # Two changes: the one-step event is built from the documents in memory; a client
        # two versions behind needs the recorded changes, read from the database.
        await in_thread(lambda: change(services))
        await eventually(lambda: state.version == since + 1)
        await in_thread(lambda: change(services))
        await eventually(lambda: state.version == since + 2)
        original = hub._changed_keys

        def broken(*args: int) -> Any:
            raise RuntimeError("database unavailable")

        monkeypatch.setattr(hub, "_changed_keys", broken)
        with pytest.raises(RuntimeError):
            await hub.catch_up(state, since)
        monkeypatch.setattr(hub, "_changed_keys", original)
        assert (await hub.catch_up(state, since)).name == "change"
        await hub.stop()

    run(main())


@SQLITE
def test_versions_beyond_the_replay_window_or_unrecorded_get_the_snapshot(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded = seed(services)
    monkeypatch.setattr(hub_module, "REPLAY_WINDOW", 2)

    async def main() -> None:
        hub = await started_hub(services)()
        state = await hub.state(seeded.environment_id)
        start = state.version
        for _ in range(3):
            await in_thread(lambda: change(services))
        await eventually(lambda: state.version == start + 3)
        assert (await hub.catch_up(state, start)).name == "snapshot"  # 3 back: too old
        assert (await hub.catch_up(state, start + 1)).name == "change"  # 2 back: replayed
        unrecorded = await hub.catch_up(state, 0)  # before the environment's first record
        assert unrecorded is state.snapshot_event()  # shared, not a cached copy
        snapshot = await hub.catch_up(state, state.version + 5)
        assert snapshot is state.snapshot_event()
        assert snapshot.data == (
            f"id: {state.version}\nevent: snapshot\ndata: {state.text}\n\n".encode()
        )
        await hub.stop()

    run(main())


@SQLITE
def test_the_catch_up_cache_is_bounded(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    seeded = seed(services)

    async def main() -> None:
        hub = await started_hub(services)()
        state = await hub.state(seeded.environment_id)
        monkeypatch.setattr(hub, "_changed_keys", lambda *args: (set(), set()))
        state.version = 500  # pretend: many versions, each needing its own catch-up
        for since in range(300, 500):
            await hub.catch_up(state, since)
        assert len(state.payloads) <= hub_module._PAYLOAD_CACHE
        await hub.stop()

    run(main())


# -- streams ----------------------------------------------------------------------------


class Conn:
    """:func:`serve_stream` on an in-memory ASGI connection: body chunks out, disconnect in.

    Started on the first :meth:`next` (like a response the server starts sending)."""

    def __init__(
        self, hub: DeliveryHub, state: EnvironmentState, key_id: int, since: int | None
    ) -> None:
        self.args = (hub, state, key_id, since)
        self.out: asyncio.Queue[MutableMapping[str, Any]] = asyncio.Queue()
        self.gone = asyncio.Event()
        self.requested = False
        self.task: asyncio.Task[None] | None = None

    async def _receive(self) -> dict[str, Any]:
        if not self.requested:
            self.requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: MutableMapping[str, Any]) -> None:
        await self.out.put(message)

    async def next(self) -> bytes:
        """The next body chunk; ``StopAsyncIteration`` once the response ended."""
        if self.task is None:
            hub, state, key_id, since = self.args
            self.task = asyncio.create_task(
                serve_stream(hub, state, key_id, since, self._receive, self._send)
            )
        while True:
            message = await self.out.get()
            if message["type"] == "http.response.start":
                assert message["status"] == 200
                continue
            if not message.get("more_body", False):
                raise StopAsyncIteration
            body: bytes = message["body"]
            return body

    async def disconnect(self) -> None:
        """The client goes away; the stream's coroutine ends."""
        self.gone.set()
        if self.task is not None:
            await asyncio.wait_for(self.task, 5)


def _open(hub: DeliveryHub, state: EnvironmentState, key_id: int, since: int | None = None) -> Conn:
    return Conn(hub, state, key_id, since)


@SQLITE
def test_streams_attach_when_started_and_detach_when_closed(services: Services) -> None:
    seeded = seed(services)

    async def main() -> None:
        hub = await started_hub(services)()
        state = await hub.state(seeded.environment_id)
        never_started = _open(hub, state, seeded.key_id)
        assert hub.stream_count() == 0  # a response that never starts holds nothing
        del never_started
        streams = [_open(hub, state, seeded.key_id) for _ in range(3)]
        for stream in streams:
            assert await stream.next() == b"retry: 1000\n\n"
            assert (await stream.next()).startswith(b"id: ")
        assert hub.stream_count() == 3
        pending = asyncio.create_task(streams[0].next())  # waiting for a change
        await asyncio.sleep(0.05)
        assert not pending.done()
        await streams[0].disconnect()  # the client goes away while it waits
        with pytest.raises(StopAsyncIteration):  # the response is ended, not left open
            await asyncio.wait_for(pending, 5)
        await streams[1].disconnect()
        assert hub.stream_count() == 1
        await hub.stop()
        with pytest.raises(StopAsyncIteration):  # the hub's stop ends the last one
            await asyncio.wait_for(streams[2].next(), 5)
        assert hub.stream_count() == 0

    run(main())


@SQLITE
def test_a_stream_sends_the_change_then_waits(services: Services) -> None:
    seeded = seed(services)

    async def main() -> None:
        hub = await started_hub(services)()
        state = await hub.state(seeded.environment_id)
        stream = _open(hub, state, seeded.key_id, since=state.version)
        assert await stream.next() == b"retry: 1000\n\n"
        next_event = asyncio.create_task(stream.next())
        await asyncio.sleep(0.05)
        assert not next_event.done()  # resumed at the current version: nothing to send
        before = state.version
        await in_thread(lambda: change(services))
        event = await asyncio.wait_for(next_event, 5)
        assert event.startswith(f"id: {before + 1}\nevent: change\n".encode())
        assert f'"from":{before},'.encode() in event
        await hub.stop()

    run(main())


@pytest.mark.parametrize("how", ["revoked", "deleted"])
def test_streams_of_a_revoked_or_deleted_key_are_closed(services: Services, how: str) -> None:
    seeded = seed(services)
    other = key_use.create_sdk_key(services, CALLER, "shop", "prod", kind="server")
    with services.view() as conn:
        other_id = conn.execute(
            select(sdk_keys.c.id).where(sdk_keys.c.prefix == other["prefix"])
        ).scalar_one()

    def remove_key() -> None:
        with services.database.write() as conn:
            if how == "revoked":
                conn.execute(
                    update(sdk_keys)
                    .where(sdk_keys.c.id == seeded.key_id)
                    .values(revoked_at=services.now())
                )
            else:
                conn.execute(delete(sdk_keys).where(sdk_keys.c.id == seeded.key_id))

    async def main() -> None:
        hub = await started_hub(services, revocation_interval=0.05)()
        state = await hub.state(seeded.environment_id)
        doomed = _open(hub, state, seeded.key_id, since=state.version)
        kept = _open(hub, state, other_id, since=state.version)
        await doomed.next()
        await kept.next()
        waiting = asyncio.create_task(doomed.next())
        kept_waiting = asyncio.create_task(kept.next())
        await in_thread(remove_key)
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(waiting, 5)
        assert seeded.key_id in hub.revoked_keys
        assert not kept_waiting.done()
        assert hub.stream_count() == 1
        kept_waiting.cancel()
        await hub.stop()

    run(main())


@pytest.mark.fault
def test_deleting_the_environment_closes_its_streams(services: Services) -> None:
    seeded = seed(services)

    def delete_environment() -> None:
        with services.database.write() as conn:
            conn.execute(delete(environments).where(environments.c.id == seeded.environment_id))

    async def main() -> None:
        hub = await started_hub(services, revocation_interval=60)()  # not the key watch
        state = await hub.state(seeded.environment_id)
        stream = _open(hub, state, seeded.key_id, since=state.version)
        await stream.next()
        waiting = asyncio.create_task(stream.next())
        await in_thread(delete_environment)
        hub.notify([seeded.environment_id])  # as the listener's resync would
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(waiting, 5)
        assert seeded.environment_id not in hub.states
        with pytest.raises(Unauthenticated):
            await hub.state(seeded.environment_id)
        await hub.resync()  # nothing to compare any more: no error
        await hub.stop()

    run(main())


@SQLITE
def test_the_hub_restarts_on_a_new_event_loop(services: Services) -> None:
    """A test client (or a server) may start the same app's hub again on a new loop."""
    seeded = seed(services)
    hub = DeliveryHub(services)

    async def once() -> None:
        await hub.start()
        state = await hub.state(seeded.environment_id)
        before = state.version
        await in_thread(lambda: change(services))
        await eventually(lambda: state.version == before + 1)
        await hub.stop()

    run(once())
    run(once())
    assert services._listeners.count(hub.on_commit) == 1
    hub.notify([seeded.environment_id])  # stopped: ignored, no error


@SQLITE
def test_the_heartbeat_ticker_pings_idle_streams_only(services: Services) -> None:
    seeded = seed(services)

    async def main() -> None:
        hub = await started_hub(services, heartbeat=0.2)()
        state = await hub.state(seeded.environment_id)
        busy = _open(hub, state, seeded.key_id, since=state.version)
        assert await busy.next() == b"retry: 1000\n\n"
        (busy_stream,) = state.streams
        idle = _open(hub, state, seeded.key_id, since=state.version)
        assert await idle.next() == b"retry: 1000\n\n"
        for _ in range(2):
            for _ in range(6):  # the busy one writes every 0.1 s: never idle for 0.2 s
                busy_stream.sent()
                await asyncio.sleep(0.1)
            assert await asyncio.wait_for(idle.next(), 2) == b": ping\n\n"
        assert busy.out.empty()
        await hub.stop()

    run(main())
