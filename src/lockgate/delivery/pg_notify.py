"""Fan-out between replicas with PostgreSQL LISTEN/NOTIFY — no extra infrastructure.

Each commit that changes an environment sends ``NOTIFY lockgate_changes, '<env>:<version>'``
(delivered only if the transaction commits; see ``control.snapshots.bump``), and each one
that changes identities (tokens, users, roles) sends ``'identity'``, on which every replica
forgets the API-token principals it cached (``Services.change``). Every replica
runs one listener thread that hands notifications to its delivery hub. A dropped listener
connection is re-opened with backoff, and then — and every ``resync_interval`` seconds
anyway — the hub compares the versions it streams with the database, so a notification
missed while disconnected delays a change, it never loses it (and the principal cache is
emptied on every reconnection, since an identity notification may have been missed).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

import psycopg

from lockgate.control.governance.runtime import APPROVAL_CHANNEL
from lockgate.store.db import CHANGE_CHANNEL, IDENTITY_CHANGED, connection_options

__all__ = ["APPLICATION_NAME", "ChangeListener", "parse_payload"]

log = logging.getLogger("lockgate.delivery")

APPLICATION_NAME = "lockgate-listener"
"""The listener connection's ``application_name`` is this, ``/`` and the process id, so that
an operator (or a test) can find each replica's listener in ``pg_stat_activity``."""


def parse_payload(payload: str) -> int | None:
    """The environment id of a notification payload ``"<env>:<version>"``."""
    env, _, version = payload.partition(":")
    if not env.isdigit() or not version.isdigit():
        return None
    return int(env)


class ChangeListener:
    """A daemon thread that LISTENs and calls ``on_change([env ids])``, ``on_resync()``
    and ``on_identity()``."""

    def __init__(  # noqa: PLR0913 - one callback per notification kind, and the timings
        self,
        url: str,
        on_change: Callable[[list[int]], None],
        on_resync: Callable[[], None],
        *,
        on_identity: Callable[[], None] | None = None,
        resync_interval: float = 5.0,
        max_backoff: float = 2.0,
        connect_timeout: float = 5.0,
        on_approval: Callable[[int], None] | None = None,
        on_reconnect: Callable[[], None] | None = None,
    ) -> None:
        self.url = url.replace("postgresql+psycopg://", "postgresql://", 1)
        self.on_change = on_change
        self.on_resync = on_resync
        self.on_approval = on_approval
        """Called with the id of each runtime approval decided (on any replica)."""
        self.on_reconnect = on_reconnect or _nothing
        """Called each time the listener (re)connects: what it may have missed meanwhile."""
        self.on_identity = on_identity or _nothing
        self.connect_timeout = connect_timeout
        self.resync_interval = resync_interval
        self.max_backoff = max_backoff
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lockgate-pg-listen", daemon=True)
        self.connected = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 3.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                self._listen()
            except Exception as exc:
                if self.connected.is_set():
                    backoff = 0.5  # it had been working: retry soon, not after old failures
                self.connected.clear()
                if self._stop.is_set():
                    return
                log.warning("change listener lost its connection (%s); retrying", exc)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff)

    def _listen(self) -> None:
        with psycopg.connect(
            self.url,
            autocommit=True,
            application_name=f"{APPLICATION_NAME}/{os.getpid()}",
            # A peer that vanished without closing the connection is noticed in ~20 s.
            **connection_options(self.connect_timeout),
        ) as conn:
            conn.execute(f"LISTEN {CHANGE_CHANNEL}")
            if self.on_approval is not None:
                conn.execute(f"LISTEN {APPROVAL_CHANNEL}")
            self.connected.set()
            # Catch up on anything sent while we were not listening.
            self.on_identity()
            self.on_reconnect()
            self.on_resync()
            last_resync = time.monotonic()
            while not self._stop.is_set():
                # The generator yields each notification as it arrives; the hub coalesces.
                for notify in conn.notifies(timeout=0.5):
                    if notify.channel == APPROVAL_CHANNEL:
                        if self.on_approval is not None and notify.payload.isdigit():
                            self.on_approval(int(notify.payload))
                        continue
                    if notify.payload == IDENTITY_CHANGED:
                        self.on_identity()
                        continue
                    env = parse_payload(notify.payload)
                    if env is not None:
                        self.on_change([env])
                if time.monotonic() - last_resync >= self.resync_interval:
                    self.on_resync()
                    last_resync = time.monotonic()


def _nothing() -> None:
    return None
