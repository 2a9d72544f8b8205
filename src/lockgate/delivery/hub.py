"""The delivery hub: each environment's current snapshot, and the streams waiting on it.

One hub per server process, living on the event loop. It learns of changes from local
commits (``Services.subscribe``) and from other replicas (:mod:`lockgate.delivery.pg_notify`),
reloads the environment's snapshot once per new version, and wakes every stream of that
environment. Each stream then sends one event covering everything since the version it
last sent — so a burst of commits is coalesced — and the event for a given ``(from, to)``
pair is computed (and encoded) once however many streams need it.

Reloads of one environment are at least ``min_refresh_interval`` apart: the first change
after a quiet period is reloaded at once, the commits of a burst are merged into the next
reload. Database work runs in worker threads, at most ``db_threads`` at a time, so that a
reconnect storm or a resync of many environments cannot starve the API of threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from types import FrameType
from typing import Any, TypeVar

from anyio import CapacityLimiter, to_thread
from sqlalchemy import select
from sqlalchemy.exc import NoResultFound

from lockgate.control.base import ChangeEvent, Services
from lockgate.control.configuration import snapshots
from lockgate.control.evidence.audit_query import head_seq
from lockgate.delivery.approvals import ApprovalWaiters
from lockgate.delivery.audit_feed import AuditFeed
from lockgate.engine import CompiledSnapshot, compile_snapshot, decode
from lockgate.errors import Unauthenticated
from lockgate.store.db import is_unavailable
from lockgate.store.tables import environment_changes, environments, sdk_keys

__all__ = [
    "REPLAY_WINDOW",
    "DeliveryHub",
    "EnvironmentDeletedError",
    "EnvironmentState",
    "Event",
    "Stream",
    "encode_event",
]

log = logging.getLogger("lockgate.delivery")

REPLAY_WINDOW = 1000
"""How many versions back a stream can resume with a ``change`` instead of a snapshot."""
_PAYLOAD_CACHE = 64
"""Catch-up events kept per environment (older ``(from, to)`` pairs are rebuilt on demand)."""
_RETRY_MAX = 10.0
FAN_OUT_BATCH = 250
"""Streams written between two turns given back to the event loop during a fan-out."""
_T = TypeVar("_T")


class EnvironmentDeletedError(LookupError):
    """The environment no longer exists (deleted, with its SDK keys)."""


@dataclass(frozen=True)
class Event:
    """One encoded server-sent event: ``snapshot`` or ``change`` at ``version``."""

    name: str
    version: int
    data: bytes
    since: int | None = None
    """For a ``change``: the version it applies on top of."""


_WHOLE_PARTS = ("metrics", "tools", "tool_policy")
"""Parts of a snapshot a change event carries whole (docs/delivery.md)."""


def encode_event(name: str, version: int, data: str) -> bytes:
    return f"id: {version}\nevent: {name}\ndata: {data}\n\n".encode()


def _difference(before: dict[str, Any], after: dict[str, Any], since: int, version: int) -> Event:
    """The ``change`` event from document ``before`` (at ``since``) to ``after``.

    It also lists, as ``same_variations``, the changed flags whose kind and variations are
    as they were at ``since`` (most changes: a switch, a rollout, a rule), which SDKs may
    take from the flag they hold instead of decoding and checking them again.
    """
    parts: dict[str, Any] = {}
    for kind in ("flags", "segments"):
        old, new = before.get(kind, {}), after.get(kind, {})
        keys = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
        parts[kind] = {k: new.get(k) for k in keys}
    old_flags = before.get("flags", {})
    same = [
        key
        for key, flag in parts["flags"].items()
        if flag is not None
        and (held := old_flags.get(key)) is not None
        and held.get("kind") == flag.get("kind")
        and held.get("variations") == flag.get("variations")
    ]
    if same:
        parts["same_variations"] = same
    parts.update((part, after[part]) for part in _WHOLE_PARTS if after.get(part))
    data = json.dumps({"from": since, "version": version, **parts}, separators=(",", ":"))
    return Event("change", version, encode_event("change", version, data), since)


@dataclass(eq=False)
class Stream:
    """One connected SDK stream: woken on changes of its environment, for a heartbeat,
    or to be closed."""

    key_id: int
    environment_id: int
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    revoked: bool = False
    ping: bool = False
    """The heartbeat ticker asks for a ``: ping`` comment."""
    last_sent: float = field(default_factory=time.monotonic)
    push: Callable[[Event], bool] | None = None
    """Set while the stream's task waits: sends an event at once on the hub's turn, without
    waking the task; ``False`` when it cannot (the task is woken instead)."""

    def close(self) -> None:
        self.revoked = True
        self.wake.set()

    def sent(self) -> None:
        """Something was written: the heartbeat is due a full interval from now."""
        self.last_sent = time.monotonic()

    def is_open(self) -> bool:
        return not self.revoked


@dataclass
class EnvironmentState:
    environment_id: int
    version: int
    document: dict[str, Any]
    text: str
    streams: set[Stream] = field(default_factory=set)
    payloads: OrderedDict[tuple[int, int], asyncio.Future[Event]] = field(
        default_factory=OrderedDict
    )
    compiled: CompiledSnapshot | None = None
    refreshing: bool = False
    dirty: bool = False
    last_refresh: float = float("-inf")
    snapshot: Event | None = None
    work_weights: Any = None
    """(compiled snapshot, per-flag and per-key-kind work weights); see delivery.remote."""
    encoded: tuple[str, bytes] | None = None

    def body(self) -> bytes:
        """The snapshot document as response bytes, encoded once per document text."""
        encoded = self.encoded
        if encoded is None or encoded[0] is not self.text:
            encoded = self.encoded = (self.text, self.text.encode())
        return encoded[1]

    def compiled_snapshot(self) -> CompiledSnapshot:
        if self.compiled is None:
            self.compiled = compile_snapshot(decode(self.document))
        return self.compiled

    def snapshot_event(self) -> Event:
        """The current snapshot as an event, encoded once per version."""
        if self.snapshot is None or self.snapshot.version != self.version:
            self.snapshot = Event(
                "snapshot", self.version, encode_event("snapshot", self.version, self.text)
            )
        return self.snapshot


class DeliveryHub:
    def __init__(
        self,
        services: Services,
        *,
        revocation_interval: float = 0.5,
        min_refresh_interval: float = 0.1,
        db_threads: int = 4,
        heartbeat: float = 15.0,
    ) -> None:
        self.services = services
        self.heartbeat = heartbeat
        """Seconds of silence after which a stream gets a ``: ping`` (0: never)."""
        self.revocation_interval = revocation_interval
        self.min_refresh_interval = min_refresh_interval
        self.db_threads = db_threads
        self.loop: asyncio.AbstractEventLoop | None = None
        self.states: dict[int, EnvironmentState] = {}
        self._loading: dict[int, asyncio.Task[EnvironmentState]] = {}
        self._notified_while_loading: set[int] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._subscribed = False
        self._limiter: CapacityLimiter | None = None
        self._signal_handlers: dict[int, Any] = {}
        self.revoked_keys: set[int] = set()
        """Keys whose streams the revocation watch closed: the key cache must not serve them."""
        self.approvals = ApprovalWaiters()
        """Long polls waiting for runtime approval decisions (closed with the streams)."""
        self.audit_feed = AuditFeed(partial(head_seq, services))
        """Open dashboard pages following the audit head (closed with the streams)."""
        self.on_propagated: Callable[[float], None] | None = None
        """Told, after a new version was written to every stream of its environment, how
        many seconds passed since this process learned of the change."""
        self._noticed: dict[int, float] = {}
        self.draining = False
        """Set when the server was told to stop: streams are closed and new ones refused
        (``503``), so that SDKs reconnect to another replica."""

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Start on the running loop (again after :meth:`stop`, e.g. a new test client)."""
        self.loop = asyncio.get_running_loop()
        self.approvals.start(self.loop)
        self.audit_feed.start(self.loop)
        self.draining = False
        self.states.clear()
        self._loading.clear()
        self._notified_while_loading.clear()
        self._limiter = CapacityLimiter(self.db_threads)
        if not self._subscribed:
            self.services.subscribe(self.on_commit)
            self.services.subscribe(self.audit_feed.wake)
            self._subscribed = True
        self._keep(asyncio.create_task(self._watch_revocations()))
        if self.heartbeat > 0:
            self._keep(asyncio.create_task(self._heartbeats()))
        self._close_streams_on_exit_signals()

    async def stop(self) -> None:
        self._restore_signal_handlers()
        tasks = list(self._tasks) + list(self._loading.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        self.close_all()
        self.states.clear()
        self.loop = None

    def drain(self) -> None:
        """The server is stopping: refuse new streams, end the open ones."""
        self.draining = True
        self.close_all()

    def close_all(self) -> None:
        """End every open stream (shutdown); SDKs reconnect, to this or another replica."""
        self.approvals.close_all()
        self.audit_feed.close_all()
        for state in self.states.values():
            for stream in state.streams:
                stream.close()

    def _keep(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _close_streams_on_exit_signals(self) -> None:
        """Close streams when the server is told to stop, so that it can stop.

        The ASGI server (uvicorn) waits for open responses to finish before it runs the
        application's shutdown, and a stream never finishes by itself: without this, a
        server with connected SDKs would not stop on SIGTERM until killed. The server's own
        handler still runs after ours. Only possible in the main thread (``lockgate serve``).
        """
        if threading.current_thread() is not threading.main_thread():
            return
        loop = self.loop
        assert loop is not None
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous = signal.getsignal(sig)
            if not callable(previous):
                continue  # the default action or ignored: nothing to chain to

            def handler(
                signum: int, frame: FrameType | None, previous: Callable[..., Any] = previous
            ) -> None:
                with contextlib.suppress(RuntimeError):  # the loop is closed
                    loop.call_soon_threadsafe(self.drain)
                previous(signum, frame)

            signal.signal(sig, handler)
            self._signal_handlers[sig] = (handler, previous)

    def _restore_signal_handlers(self) -> None:
        for sig, (handler, previous) in self._signal_handlers.items():
            if signal.getsignal(sig) is handler:
                signal.signal(sig, previous)
        self._signal_handlers.clear()

    async def _run_db(self, func: Callable[..., _T], *args: Any) -> _T:
        return await to_thread.run_sync(func, *args, limiter=self._limiter)

    # -- change notifications (any thread) -------------------------------------------------

    def on_commit(self, event: ChangeEvent) -> None:
        """Called by the services after a local commit, in the committing thread."""
        self.notify(event.environment_ids)

    def notify(self, environment_ids: tuple[int, ...] | list[int]) -> None:
        """Thread-safe: environments whose snapshot may have a new version."""
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        noticed = time.monotonic()
        for environment_id in environment_ids:
            self._noticed.setdefault(environment_id, noticed)
            try:
                loop.call_soon_threadsafe(self._schedule_refresh, environment_id)
            except RuntimeError:  # the loop closed meanwhile (shutdown)
                return

    def request_resync(self) -> None:
        """Thread-safe and non-blocking: :meth:`resync` on the hub's loop."""
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(lambda: self._keep(asyncio.create_task(self._resync())))

    async def _resync(self) -> None:
        try:
            await self.resync()
        except Exception as exc:
            _failed(exc, "comparing environment versions with the database failed")

    def _schedule_refresh(self, environment_id: int) -> None:
        state = self.states.get(environment_id)
        if state is None:
            self._noticed.pop(environment_id, None)
            if environment_id in self._loading:
                # Being loaded: the load may have read the version before this commit.
                self._notified_while_loading.add(environment_id)
            return  # nobody uses it here; it is loaded fresh on first use
        if state.refreshing:
            state.dirty = True
            return
        state.refreshing = True
        self._keep(asyncio.create_task(self._refresh(state)))

    async def _refresh(self, state: EnvironmentState) -> None:
        loop = asyncio.get_running_loop()
        retry = 0.5
        try:
            while True:
                wait = state.last_refresh + self.min_refresh_interval - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)  # merge the rest of a burst into this reload
                state.dirty = False
                state.last_refresh = loop.time()
                try:
                    version, document = await self._run_db(self._load, state.environment_id)
                except EnvironmentDeletedError:
                    self._drop(state)
                    return
                except Exception as exc:
                    _failed(exc, f"reloading environment {state.environment_id} failed")
                    await asyncio.sleep(retry)  # never leave streams on a stale version
                    retry = min(retry * 2, _RETRY_MAX)
                    continue
                retry = 0.5
                noticed = self._noticed.pop(state.environment_id, None)
                if version > state.version:
                    await self._fan_out(state, self._apply(state, version, document))
                    if noticed is not None and self.on_propagated is not None:
                        self.on_propagated(time.monotonic() - noticed)
                if not state.dirty:
                    return
        finally:
            state.refreshing = False

    def _apply(
        self, state: EnvironmentState, version: int, document: dict[str, Any]
    ) -> Event | None:
        """Make ``document`` current; the ``change`` event from the version it replaces."""
        since, before = state.version, state.document
        state.version = version
        state.document = document
        state.text = json.dumps(document, separators=(",", ":"))
        state.compiled = None
        event = None
        if since < version:
            # Most streams hold the version just replaced: their event is the difference
            # of the two documents, built here once, and written to each of them in this
            # one pass (the streams' tasks are not woken for it).
            event = _difference(before, document, since, version)
            ready: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
            ready.set_result(event)
            state.payloads[(since, version)] = ready
            while len(state.payloads) > _PAYLOAD_CACHE:
                state.payloads.popitem(last=False)
        return event

    async def _fan_out(self, state: EnvironmentState, event: Event | None) -> None:
        """Write ``event`` to every stream waiting on ``state``; wake the others.

        Every ``FAN_OUT_BATCH`` streams the loop is given back for a moment, so that a
        fan-out to thousands of streams does not hold up other requests (the write that
        caused it, health checks) until it is over.
        """
        for index, stream in enumerate(list(state.streams), 1):
            push = stream.push
            if event is None or push is None or not push(event):
                stream.wake.set()
            if index % FAN_OUT_BATCH == 0:
                await asyncio.sleep(0)

    def _drop(self, state: EnvironmentState) -> None:
        """The environment was deleted: forget it and close its streams."""
        if self.states.get(state.environment_id) is state:
            del self.states[state.environment_id]
        for stream in state.streams:
            stream.close()

    async def resync(self) -> None:
        """Reload every environment whose stored version moved (after missed notifications)."""
        if not self.states:
            return
        environment_ids = list(self.states)
        versions = await self._run_db(self._versions, environment_ids)
        for environment_id in environment_ids:
            state = self.states.get(environment_id)
            if state is None:
                continue
            stored = versions.get(environment_id)
            if stored is None or stored > state.version:  # moved, or deleted
                self._schedule_refresh(environment_id)

    # -- snapshots -------------------------------------------------------------------------

    def _load(self, environment_id: int) -> tuple[int, dict[str, Any]]:
        try:
            with self.services.view() as conn:
                document = snapshots.build_snapshot(conn, environment_id)
        except NoResultFound:
            raise EnvironmentDeletedError(environment_id) from None
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
        """The environment's current state, loaded once and then kept current.

        Raises :class:`~lockgate.errors.Unauthenticated` when the environment no longer
        exists (its SDK keys went with it; the key cache may not know yet).
        """
        state = self.states.get(environment_id)
        if state is not None:
            return state
        task = self._loading.get(environment_id)
        if task is None:
            # A task of its own: a requester that goes away must not cancel the others' load.
            task = asyncio.create_task(self._load_state(environment_id))
            self._loading[environment_id] = task
            task.add_done_callback(lambda t: self._loaded(environment_id, t))
        try:
            return await asyncio.shield(task)
        except EnvironmentDeletedError:
            raise Unauthenticated("this SDK key's environment no longer exists") from None

    async def _load_state(self, environment_id: int) -> EnvironmentState:
        self._notified_while_loading.discard(environment_id)
        version, document = await self._run_db(self._load, environment_id)
        state = EnvironmentState(
            environment_id, version, document, json.dumps(document, separators=(",", ":"))
        )
        self.states[environment_id] = state
        if environment_id in self._notified_while_loading:
            self._notified_while_loading.discard(environment_id)
            self._schedule_refresh(environment_id)
        return state

    def _loaded(self, environment_id: int, task: asyncio.Task[EnvironmentState]) -> None:
        if self._loading.get(environment_id) is task:
            del self._loading[environment_id]
        if not task.cancelled():
            task.exception()  # retrieved: the requesters (if any) got it

    # -- streams ---------------------------------------------------------------------------

    def attach(self, state: EnvironmentState, key_id: int) -> Stream:
        stream = Stream(key_id=key_id, environment_id=state.environment_id)
        state.streams.add(stream)
        return stream

    def detach(self, state: EnvironmentState, stream: Stream) -> None:
        state.streams.discard(stream)

    async def catch_up(self, state: EnvironmentState, since: int) -> Event:
        """The one event that brings a client holding version ``since`` to the current one.

        A ``change`` with everything changed in between, or the ``snapshot`` when that
        cannot be said (too old, unknown, newer than current, or a gap in the recorded
        changes). Built once per ``(since, current version)`` however many streams ask.
        """
        target = state.version
        if since >= target or target - since > REPLAY_WINDOW:
            return state.snapshot_event()
        key = (since, target)
        task = state.payloads.get(key)
        if task is not None and task.done() and not task.cancelled() and not task.exception():
            return task.result()  # the common case, without an await per stream
        if task is None:
            # Its own task: a stream that disconnects must not cancel it for the others. The
            # document is taken now, while it is still the one at ``target``.
            task = asyncio.create_task(self._build_event(state, since, target, state.document))
            state.payloads[key] = task
            task.add_done_callback(lambda t: self._built(state, key, t))
            while len(state.payloads) > _PAYLOAD_CACHE:
                state.payloads.popitem(last=False)
        return await asyncio.shield(task)

    @staticmethod
    def _built(state: EnvironmentState, key: tuple[int, int], task: asyncio.Task[Event]) -> None:
        failed = task.cancelled() or task.exception() is not None
        if failed and state.payloads.get(key) is task:
            del state.payloads[key]  # not cached: the next stream tries again

    async def _build_event(
        self, state: EnvironmentState, since: int, target: int, document: dict[str, Any]
    ) -> Event:
        changed = await self._run_db(self._changed_keys, state.environment_id, since, target)
        if changed is None:
            if state.version == target:
                return state.snapshot_event()  # shared: the cache never holds copies of it
            text = json.dumps(document, separators=(",", ":"))
            return Event("snapshot", target, encode_event("snapshot", target, text))
        flag_keys, segment_keys = changed
        data = json.dumps(
            {
                "from": since,
                "version": target,
                "flags": {k: document["flags"].get(k) for k in sorted(flag_keys)},
                "segments": {k: document["segments"].get(k) for k in sorted(segment_keys)},
            }
            # the whole map of tracked metrics, tools and tool policy, when there is one
            # (absent: none)
            | {part: document[part] for part in _WHOLE_PARTS if document.get(part)},
            separators=(",", ":"),
        )
        return Event("change", target, encode_event("change", target, data), since)

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

    async def _heartbeats(self) -> None:
        """Ping the streams that sent nothing for ``heartbeat`` seconds.

        One ticker for all streams instead of a timer per stream and wait: streams are
        pinged a heartbeat after their own last write (within a quarter of it), so
        the pings of streams that connected at different times stay spread out.
        """
        tick = min(1.0, max(0.01, self.heartbeat / 4))
        while True:
            await asyncio.sleep(tick)
            due = time.monotonic() - self.heartbeat
            for state in list(self.states.values()):
                for stream in state.streams:
                    if stream.last_sent <= due and not stream.ping:
                        stream.ping = True
                        stream.wake.set()

    async def _watch_revocations(self) -> None:
        """Close streams of revoked keys within ``revocation_interval`` (one query a tick).

        A key that no longer exists (its environment was deleted) counts as revoked.
        """
        while True:
            await asyncio.sleep(self.revocation_interval)
            active = {s.key_id for st in self.states.values() for s in st.streams}
            if not active:
                continue
            try:
                usable = await self._run_db(self._usable, active)
            except Exception as exc:
                _failed(exc, "checking for revoked SDK keys failed")
                continue
            revoked = active - usable
            if not revoked:
                continue
            if len(self.revoked_keys) > 10_000:
                self.revoked_keys.clear()
            self.revoked_keys |= revoked
            for state in list(self.states.values()):
                for stream in state.streams:
                    if stream.key_id in revoked:
                        stream.close()

    def _usable(self, key_ids: set[int]) -> set[int]:
        with self.services.view() as conn:
            rows = conn.execute(
                select(sdk_keys.c.id).where(
                    sdk_keys.c.id.in_(key_ids), sdk_keys.c.revoked_at.is_(None)
                )
            ).all()
        return {row.id for row in rows}

    def stream_count(self) -> int:
        return sum(len(s.streams) for s in self.states.values())


_OUTAGE_LOG_INTERVAL = 30.0
_outage_logged: dict[str, float] = {}


def _failed(exc: Exception, what: str) -> None:
    """Log a failed database use: when the database is away (it is retried), one line,
    at most every 30 s per kind of use."""
    if not is_unavailable(exc):
        log.exception(what)
        return
    now = time.monotonic()
    if now - _outage_logged.get(what, -1e9) >= _OUTAGE_LOG_INTERVAL:
        _outage_logged[what] = now
        log.warning("%s: the database is unavailable (%s)", what, type(exc).__name__)
