"""Readers waiting for a runtime approval's decision (long polls), woken as it is made.

One registry per server process, living on the hub's event loop. A long poll registers
before it reads the request, so a decision committed between the read and the wait still
wakes it. Decisions made through this process wake it directly (the route that made them
calls :meth:`ApprovalWaiters.notify`); decisions made on another replica arrive through
PostgreSQL ``NOTIFY`` (:mod:`lockgate.delivery.pg_notify`). When the listener reconnects,
every reader is woken to read again (a notification may have been missed meanwhile); a
reader that finds its request still pending goes on waiting. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

__all__ = ["ApprovalWaiters"]


class ApprovalWaiters:
    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self._waiting: dict[int, set[asyncio.Event]] = {}
        self.closing = False

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.closing = False

    @contextlib.contextmanager
    def watching(self, approval_id: int) -> Iterator[asyncio.Event]:
        """An event set when ``approval_id`` may have been decided (or the server stops)."""
        event = asyncio.Event()
        if self.closing:
            event.set()
        waiting = self._waiting.setdefault(approval_id, set())
        waiting.add(event)
        try:
            yield event
        finally:
            waiting.discard(event)
            if not waiting and self._waiting.get(approval_id) is waiting:
                del self._waiting[approval_id]

    def notify(self, approval_id: int) -> None:
        """Thread-safe: wake the readers of ``approval_id``."""
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile (shutdown)
            loop.call_soon_threadsafe(self._wake, approval_id)

    def _wake(self, approval_id: int) -> None:
        for event in self._waiting.get(approval_id, ()):
            event.set()

    def notify_all(self) -> None:
        """Thread-safe: wake every reader to read again (a notification may have been
        missed while the change listener was disconnected)."""
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self.wake_all)

    def wake_all(self) -> None:
        """Wake every reader (on the loop): they read again and answer what they find."""
        for events in self._waiting.values():
            for event in events:
                event.set()

    def close_all(self) -> None:
        """The server is stopping: end every wait now, and the ones that start later."""
        self.closing = True
        self.wake_all()

    def waiting(self) -> int:
        return sum(len(e) for e in self._waiting.values())
