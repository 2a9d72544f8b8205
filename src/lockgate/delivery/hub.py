"""The delivery hub: each environment's current snapshot, and the streams waiting on it.

One hub per server process, living on the event loop. It learns of changes from local
commits (``Services.subscribe``) and from other replicas (:mod:`lockgate.delivery.pg_notify`),
reloads the environment's snapshot once per new version, and wakes every stream of that
environment. Each stream then sends one ``change`` event covering everything since the
version it last sent — so a burst of commits is coalesced — and the payload for a given
``(from, to)`` pair is computed once however many streams need it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from anyio import to_thread
from sqlalchemy import select

from lockgate.control import snapshots
from lockgate.control.base import ChangeEvent, Services
from lockgate.engine import CompiledSnapshot, compile_snapshot, decode
from lockgate.store.tables import environment_changes, environments, sdk_keys

__all__ = ["REPLAY_WINDOW", "DeliveryHub", "EnvironmentState", "Stream"]

log = logging.getLogger("lockgate.delivery")

REPLAY_WINDOW = 1000
"""How many versions back a stream can resume with a ``change`` instead of a snapshot."""
_PAYLOAD_CACHE = 64


@dataclass(eq=False)
class Stream:
    """One connected SDK stream: woken on changes of its environment or on revocation."""

    key_id: int
    environment_id: int
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    revoked: bool = False


@dataclass
class EnvironmentState:
    environment_id: int
    version: int
    document: dict[str, Any]
    text: str
    streams: set[Stream] = field(default_factory=set)
    payloads: OrderedDict[tuple[int, int], asyncio.Future[str | None]] = field(
        default_factory=OrderedDict
    )
    compiled: CompiledSnapshot | None = None
    refreshing: bool = False
    dirty: bool = False

    def compiled_snapshot(self) -> CompiledSnapshot:
        if self.compiled is None:
            self.compiled = compile_snapshot(decode(self.document))
        return self.compiled


class DeliveryHub:
    def __init__(self, services: Services, *, revocation_interval: float = 0.5) -> None:
        self.services = services
        self.revocation_interval = revocation_interval
        self.loop: asyncio.AbstractEventLoop | None = None
        self.states: dict[int, EnvironmentState] = {}
        self._loading: dict[int, asyncio.Future[EnvironmentState]] = {}
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.services.subscribe(self.on_commit)
        self._tasks.append(asyncio.create_task(self._watch_revocations()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        for state in self.states.values():
            for stream in state.streams:
                stream.revoked = True
                stream.wake.set()

    # -- change notifications (any thread) -------------------------------------------------

    def on_commit(self, event: ChangeEvent) -> None:
        """Called by the services after a local commit, in the committing thread."""
        self.notify(event.environment_ids)

    def notify(self, environment_ids: tuple[int, ...] | list[int]) -> None:
        """Thread-safe: environments whose snapshot may have a new version."""
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        for environment_id in environment_ids:
            loop.call_soon_threadsafe(self._schedule_refresh, environment_id)

    def _schedule_refresh(self, environment_id: int) -> None:
        state = self.states.get(environment_id)
        if state is None:
            return  # nobody streams it here; it is loaded fresh on first use
        if state.refreshing:
            state.dirty = True
            return
        self._tasks_keep(asyncio.create_task(self._refresh(state)))

    def _tasks_keep(self, task: asyncio.Task[None]) -> None:
        self._tasks = [t for t in self._tasks if not t.done()]
        self._tasks.append(task)

    async def _refresh(self, state: EnvironmentState) -> None:
        state.refreshing = True
        try:
            while True:
                state.dirty = False
                version, document = await to_thread.run_sync(self._load, state.environment_id)
                if version > state.version:
                    self._apply(state, version, document)
                if not state.dirty:
                    return
        except Exception:
            log.exception("reloading environment %s failed", state.environment_id)
        finally:
            state.refreshing = False

    def _apply(self, state: EnvironmentState, version: int, document: dict[str, Any]) -> None:
        state.version = version
        state.document = document
        state.text = json.dumps(document, separators=(",", ":"))
        state.compiled = None
        for stream in state.streams:
            stream.wake.set()

    async def resync(self) -> None:
        """Reload every environment whose stored version moved (after missed notifications)."""
        if not self.states:
            return
        versions = await to_thread.run_sync(self._versions, list(self.states))
        stale = [env for env, version in versions.items() if version > self.states[env].version]
        for environment_id in stale:
            self._schedule_refresh(environment_id)

    # -- snapshots -------------------------------------------------------------------------

    def _load(self, environment_id: int) -> tuple[int, dict[str, Any]]:
        with self.services.view() as conn:
            document = snapshots.build_snapshot(conn, environment_id)
        return int(document["version"]), document

    def _versions(self, environment_ids: list[int]) -> dict[int, int]:
        with self.services.view() as conn:
            rows = conn.execute(
                select(environments.c.id, environments.c.snapshot_version).where(
                    environments.c.id.in_(environment_ids)
                )
            ).all()
        return {row.id: row.snapshot_version for row in rows}

    async def state(self, environment_id: int) -> EnvironmentState:
        """The environment's current state, loaded once and then kept current."""
        state = self.states.get(environment_id)
        if state is not None:
            return state
        pending = self._loading.get(environment_id)
        if pending is None:
            pending = asyncio.get_running_loop().create_future()
            self._loading[environment_id] = pending
            try:
                version, document = await to_thread.run_sync(self._load, environment_id)
                state = EnvironmentState(
                    environment_id,
                    version,
                    document,
                    json.dumps(document, separators=(",", ":")),
                )
                self.states[environment_id] = state
                pending.set_result(state)
            except Exception as exc:
                pending.set_exception(exc)
                raise
            finally:
                del self._loading[environment_id]
            return state
        return await asyncio.shield(pending)

    # -- streams ---------------------------------------------------------------------------

    def attach(self, state: EnvironmentState, key_id: int) -> Stream:
        stream = Stream(key_id=key_id, environment_id=state.environment_id)
        state.streams.add(stream)
        return stream

    def detach(self, state: EnvironmentState, stream: Stream) -> None:
        state.streams.discard(stream)

    async def change_payload(self, state: EnvironmentState, since: int, target: int) -> str | None:
        """The ``change`` event data from ``since`` to ``target`` (the current version).

        ``None`` when the stream must get a full snapshot instead (too old, unknown, or a
        gap in the recorded changes). Computed once per ``(since, target)``.
        """
        key = (since, target)
        future = state.payloads.get(key)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            state.payloads[key] = future
            while len(state.payloads) > _PAYLOAD_CACHE:
                state.payloads.popitem(last=False)
            try:
                future.set_result(await self._build_payload(state, since, target))
            except Exception as exc:
                future.set_exception(exc)
                state.payloads.pop(key, None)
                raise
        return await asyncio.shield(future)

    async def _build_payload(self, state: EnvironmentState, since: int, target: int) -> str | None:
        if since >= target or target - since > REPLAY_WINDOW:
            return None
        document = state.document
        changed = await to_thread.run_sync(self._changed_keys, state.environment_id, since, target)
        if changed is None:
            return None
        flag_keys, segment_keys = changed
        return json.dumps(
            {
                "from": since,
                "version": target,
                "flags": {k: document["flags"].get(k) for k in sorted(flag_keys)},
                "segments": {k: document["segments"].get(k) for k in sorted(segment_keys)},
            },
            separators=(",", ":"),
        )

    def _changed_keys(
        self, environment_id: int, since: int, target: int
    ) -> tuple[set[str], set[str]] | None:
        with self.services.view() as conn:
            rows = conn.execute(
                select(environment_changes.c.flags, environment_changes.c.segments).where(
                    environment_changes.c.environment_id == environment_id,
                    environment_changes.c.snapshot_version > since,
                    environment_changes.c.snapshot_version <= target,
                )
            ).all()
        if len(rows) != target - since:
            return None  # a version without its record: cannot say what changed
        flags: set[str] = set()
        segments_: set[str] = set()
        for row in rows:
            flags.update(row.flags)
            segments_.update(row.segments)
        return flags, segments_

    # -- revocation ------------------------------------------------------------------------

    async def _watch_revocations(self) -> None:
        """Close streams of revoked keys within ``revocation_interval`` (one query a tick)."""
        while True:
            await asyncio.sleep(self.revocation_interval)
            active = {s.key_id for st in self.states.values() for s in st.streams}
            if not active:
                continue
            try:
                revoked = await to_thread.run_sync(self._revoked, active)
            except Exception:
                log.exception("checking for revoked SDK keys failed")
                continue
            for state in self.states.values():
                for stream in state.streams:
                    if stream.key_id in revoked:
                        stream.revoked = True
                        stream.wake.set()

    def _revoked(self, key_ids: set[int]) -> set[int]:
        with self.services.view() as conn:
            rows = conn.execute(
                select(sdk_keys.c.id).where(
                    sdk_keys.c.id.in_(key_ids), sdk_keys.c.revoked_at.is_not(None)
                )
            ).all()
        return {row.id for row in rows}

    def stream_count(self) -> int:
        return sum(len(s.streams) for s in self.states.values())


StateCallback = Callable[[EnvironmentState], None]
