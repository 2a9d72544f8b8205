"""The backup file: the last snapshot received from the server, kept on disk.

Read once at start (a missing, unreadable or invalid file is logged and ignored) and
rewritten after updates, atomically (a temporary file in the same directory, flushed to
disk, then renamed over the old one), so a crash never leaves a torn file behind. Writes
are coalesced to at most one per ``min_interval`` and happen on a daemon thread, never on
the thread that applied the update.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from lockgate.engine import Snapshot, SnapshotError, dumps, validate
from lockgate.sdk.client import read_snapshot_file

__all__ = ["BackupWriter", "read_backup", "write_atomically"]


def read_backup(path: Path, logger: logging.Logger) -> Snapshot | None:
    """The valid snapshot stored at ``path``, or ``None`` (logged unless simply absent)."""
    if not path.exists():
        logger.info("no backup file at %s yet", path)
        return None
    try:
        snapshot = read_snapshot_file(path)
        problems = validate(snapshot)
        if problems:
            raise SnapshotError(problems)
    except SnapshotError as exc:
        logger.warning("ignoring the backup file %s: %s", path, exc)
        return None
    return snapshot


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``: readers see the old content or the new, never a mix."""
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    _sync_directory(path.parent)


def _sync_directory(directory: Path) -> None:
    """Make the rename durable (POSIX); best effort where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class BackupWriter:
    """Writes the latest offered snapshot to ``path``, at most once per ``min_interval``."""

    def __init__(
        self,
        path: Path,
        logger: logging.Logger,
        *,
        min_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self._log = logger
        self._interval = min_interval
        self._clock = clock
        self._cond = threading.Condition()
        self._pending: Snapshot | None = None
        self._last_write = float("-inf")
        self._closed = False
        self._thread: threading.Thread | None = None
        self.writes = 0
        """How many times the file was written (for tests and diagnostics)."""

    def offer(self, snapshot: Snapshot) -> None:
        """Schedule ``snapshot`` to be written; replaces any snapshot not yet written."""
        with self._cond:
            if self._closed:
                return
            self._pending = snapshot
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="lockgate-backup", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def close(self, timeout: float) -> None:
        """Write what is pending now, then stop (waiting at most ``timeout`` seconds)."""
        with self._cond:
            self._closed = True
            self._cond.notify()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            snapshot = self._next()
            if snapshot is None:
                return
            self._write(snapshot)

    def _next(self) -> Snapshot | None:
        """Wait for a snapshot that is due; ``None`` once closed with nothing pending."""
        with self._cond:
            while True:
                if self._pending is None:
                    if self._closed:
                        return None
                    self._cond.wait()
                    continue
                wait = self._last_write + self._interval - self._clock()
                if wait > 0 and not self._closed:
                    self._cond.wait(wait)
                    continue
                snapshot, self._pending = self._pending, None
                self._last_write = self._clock()
                return snapshot

    def _write(self, snapshot: Snapshot) -> None:
        try:
            write_atomically(self.path, dumps(snapshot))
        except (OSError, ValueError) as exc:
            self._log.warning("cannot write the backup file %s: %s", self.path, exc)
            return
        self.writes += 1
        self._log.debug("backup file %s written (version %d)", self.path, snapshot.version)
