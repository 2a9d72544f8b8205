"""Database access: one engine, write transactions serialised, reads in parallel.

SQLite (the embedded default) runs in WAL mode with one writer: write transactions take
an in-process lock and open with ``BEGIN IMMEDIATE``, so concurrent API writes queue up
instead of failing with ``database is locked``; readers never wait. On PostgreSQL every
write transaction first takes a transaction-scoped advisory lock, which orders the writes
of all replicas the same way.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.pool import NullPool

__all__ = ["WRITE_LOCK_KEY", "Database", "normalize_url"]

WRITE_LOCK_KEY = 0x6C6F636B67617465  # "lockgate": the PostgreSQL advisory lock for writers


def normalize_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL URLs given without a driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class Database:
    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = normalize_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        self._write_lock = threading.RLock()
        self.engine: Engine = self._create_engine(pool_size)

    def _create_engine(self, pool_size: int) -> Engine:
        if not self.is_sqlite:
            return create_engine(
                self.url, pool_size=pool_size, max_overflow=20, pool_pre_ping=True, future=True
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

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction: committed on success, rolled back on any exception."""
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
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def dispose(self) -> None:
        self.engine.dispose()


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
