"""Database fixtures for store tests, on real SQLite and real PostgreSQL.

``database_url`` is parametrized over ``sqlite`` (a file in ``tmp_path``) and ``postgres``
(marked ``postgres``): a fresh schema per test, made the only one on the connection's
``search_path``, in one database created for the test session on the server at
``LOCKGATE_TEST_PG_URL`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``) and
dropped at the end. A schema is much cheaper than a database, and every test still starts
empty: migrations, triggers and the ``alembic_version`` table all land in its schema.

``database`` is a migrated :class:`~lockgate.store.db.Database` on it, disposed after the
test. Any test under tests/store that asks for either runs once per backend; choose one
with ``-m "not postgres"`` or ``-k sqlite``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import URL, make_url

from lockgate.store.db import Database
from lockgate.store.migrate import upgrade

PG_SERVER_URL = os.environ.get(
    "LOCKGATE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _libpq(url: URL) -> str:
    """``url`` as psycopg (libpq) accepts it: no SQLAlchemy driver name."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_session_database() -> Iterator[URL]:
    """A database created for this test session (per xdist worker), dropped at its end."""
    server = make_url(PG_SERVER_URL)
    name = f"lockgate_test_{secrets.token_hex(6)}"
    with psycopg.connect(_libpq(server), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield server.set(database=name)
    finally:
        with psycopg.connect(_libpq(server), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
def pg_schema_url(pg_session_database: URL) -> Iterator[str]:
    """The URL of a fresh, empty schema that is the whole ``search_path``."""
    schema = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(_libpq(pg_session_database), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        url = pg_session_database.update_query_dict({"options": f"-csearch_path={schema}"})
        yield _libpq(url)
    finally:
        with psycopg.connect(_libpq(pg_session_database), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a fresh, empty database on each backend."""
    if request.param == "postgres":
        return str(request.getfixturevalue("pg_schema_url"))
    return f"sqlite:///{tmp_path / 'lockgate.db'}"


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    """A migrated database (audit chain empty, append-only triggers installed)."""
    db = Database(database_url, pool_size=2)
    upgrade(db)
    try:
        yield db
    finally:
        db.dispose()
