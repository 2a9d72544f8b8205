"""The sync state of a networked client, with listeners and waiting."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from enum import StrEnum

__all__ = ["StateListener", "StateTracker", "SyncState"]


class SyncState(StrEnum):
    """How current the data being served is.

    ``INITIALIZING``: nothing is known yet (before the first answer from the server).
    ``READY``: serving current data from the server over a healthy connection.
    ``STALE``: serving last-known-good data (old server data, a backup file or bootstrap
    data) while the server cannot be reached.
    ``ERROR``: the SDK key was rejected, or the server cannot be reached and there is
    nothing to serve (evaluations return the caller's defaults).
    ``CLOSED``: :meth:`Client.close` was called; the data being served no longer changes.
    """

    INITIALIZING = "INITIALIZING"
    READY = "READY"
    STALE = "STALE"
    ERROR = "ERROR"
    CLOSED = "CLOSED"


StateListener = Callable[[SyncState, SyncState, str], None]
"""``listener(old, new, reason)``."""


class StateTracker:
    """The current state; notifies listeners and waiters of every change."""

    def __init__(self, logger: logging.Logger) -> None:
        self._log = logger
        self._cond = threading.Condition()
        self._state = SyncState.INITIALIZING
        self._listeners: list[StateListener] = []

    @property
    def state(self) -> SyncState:
        return self._state

    def on_change(self, listener: StateListener) -> None:
        with self._cond:
            self._listeners.append(listener)

    def set(self, new: SyncState, reason: str) -> bool:
        """Move to ``new``; ``False`` if already there or closed (closing is final)."""
        with self._cond:
            old = self._state
            if old is new or old is SyncState.CLOSED:
                return False
            self._state = new
            self._cond.notify_all()
            listeners = list(self._listeners)
        self._log.info("sync state %s -> %s: %s", old, new, reason)
        for listener in listeners:
            try:
                listener(old, new, reason)
            except Exception:  # a faulty listener must not stop synchronisation
                self._log.exception("state listener %r failed", listener)
        return True

    def wait_for(self, target: SyncState, timeout: float | None) -> bool:
        """Wait until the state is ``target``; ``False`` on timeout or once closed."""
        with self._cond:
            self._cond.wait_for(
                lambda: self._state is target or self._state is SyncState.CLOSED, timeout
            )
            return self._state is target
