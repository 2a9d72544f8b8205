"""Database access: one engine, write transactions serialised, reads in parallel.

SQLite (the embedded default) runs in WAL mode with one writer: write transactions take
an in-process lock and open with ``BEGIN IMMEDIATE``, so concurrent API writes queue up
instead of failing with ``database is locked``; readers never wait. On PostgreSQL every
write transaction first takes a transaction-scoped advisory lock, which orders the writes
of all replicas the same way.

When PostgreSQL cannot be reached, every use fails within about ``connect_timeout``
seconds (connection attempts, waits for a pooled connection) with one of
:data:`UNAVAILABLE`; :func:`is_unavailable` tells such failures from others, and
:meth:`Database.recently_unavailable` lets callers that can answer from memory skip the
database for a moment instead of waiting on it again.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, exc, text
from sqlalchemy.pool import NullPool

__all__ = [
    "CHANGE_CHANNEL",
    "IDENTITY_CHANGED",
    "UNAVAILABLE",
    "WRITE_LOCK_KEY",
    "Database",
    "connection_options",
    "is_unavailable",
    "normalize_url",
]

WRITE_LOCK_KEY = 0x6C6F636B67617465  # "lockgate": the PostgreSQL advisory lock for writers
CHANGE_CHANNEL = "lockgate_changes"
"""The PostgreSQL NOTIFY channel of changes other replicas must see."""
IDENTITY_CHANGED = "identity"
"""Its payload for a committed identity change (a token, user or role written): every
replica forgets the principals it cached. Environment changes send ``<env>:<version>``."""


UNAVAILABLE = (exc.OperationalError, exc.InterfaceError, exc.TimeoutError)
"""What a database that is down, unreachable, restarting or overloaded raises: the
connection failed or broke, or no pooled connection came free in time."""


def is_unavailable(error: BaseException) -> bool:
    """Whether ``error`` means the database could not be used (a retry later may work)."""
    return isinstance(error, UNAVAILABLE)


def connection_options(connect_timeout: float) -> dict[str, Any]:
    """libpq options for every PostgreSQL connection: bounded connects, dead peers noticed.

    ``connect_timeout`` bounds a connection attempt to an address that does not answer;
    keepalives and ``tcp_user_timeout`` make a connection whose peer vanished (unplugged,
    partitioned) fail in about 20 s instead of the kernel's default of many minutes.
    """
    return {
        "connect_timeout": max(2, round(connect_timeout)),  # libpq: at least 2 s
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 5,
        "keepalives_count": 2,
        "tcp_user_timeout": 20_000,
    }


def normalize_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL URLs given without a driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class Database:
    def __init__(self, url: str, *, pool_size: int = 10, connect_timeout: float = 5.0) -> None:
        self.url = normalize_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        self.connect_timeout = connect_timeout
        self._write_lock = threading.RLock()
        self._unavailable_at = -1e9
        self.engine: Engine = self._create_engine(pool_size)

    def _create_engine(self, pool_size: int) -> Engine:
        if not self.is_sqlite:
            return create_engine(
                self.url,
                pool_size=pool_size,
                max_overflow=20,
                pool_pre_ping=True,
                pool_timeout=self.connect_timeout,
                connect_args=connection_options(self.connect_timeout),
                future=True,
            )
        path = self.url.removeprefix("sqlite:///")
        if path and path != ":memory:" and not path.startswith("file:"):
            create_private_file(Path(path))
        engine = create_engine(
            self.url,
            connect_args={"check_same_thread": False, "timeout": 30},
            poolclass=NullPool if path == ":memory:" else None,
        )
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine

    def note_unavailable(self) -> None:
        """A use of the database just failed because it could not be reached."""
        self._unavailable_at = time.monotonic()

    def recently_unavailable(self, seconds: float = 1.0) -> bool:
        """Whether a use of the database failed as unavailable in the last ``seconds``."""
        return time.monotonic() - self._unavailable_at < seconds

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction: committed on success, rolled back on any exception."""
        with _OutageNote(self), self._write() as conn:
            yield conn

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        if self.is_sqlite:
            with self._write_lock, self.engine.connect() as conn:
                conn.info["lockgate_write"] = True
                with conn.begin():
                    yield conn
            return
        with self.engine.begin() as conn:
            # One writer at a time across every replica, as on SQLite: each write reads
            # what it checks (versions, existence) after the previous write committed, so
            # optimistic-concurrency checks cannot race. Released at commit or rollback.
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": WRITE_LOCK_KEY})
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction over a consistent view."""
        with _OutageNote(self), self.engine.connect() as conn, conn.begin():
            yield conn

    def dispose(self) -> None:
        self.engine.dispose()


class _OutageNote:
    """Records the time of an unavailable-database failure passing through it."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, error: BaseException | None, _tb: Any) -> None:
        if error is not None and is_unavailable(error):
            self.database.note_unavailable()


def make_private_dir(path: Path) -> None:
    """Create ``path`` and missing parents readable by the owner only (mode 0700).

    Directories that exist are left as they are: an operator may have chosen their mode.
    """
    missing = []
    for directory in (path, *path.parents):
        if directory.exists():
            break
        missing.append(directory)
    for directory in reversed(missing):
        with suppress(FileExistsError):  # created concurrently
            directory.mkdir(mode=0o700)


def create_private_file(path: Path) -> None:
    """Create an empty ``path`` with mode 0600 if it does not exist (SQLite gives its WAL
    and shared-memory files the database file's mode)."""
    make_private_dir(path.parent)
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's own is deferred only).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    write = conn.info.pop("lockgate_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
