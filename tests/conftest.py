"""Shared fixtures: real databases (SQLite and PostgreSQL) and the real application.

``database_url`` is parametrized over both backends; PostgreSQL tests get a fresh
database per test module, created on the server at ``LOCKGATE_TEST_PG_URL``
(default ``postgresql://postgres@127.0.0.1:5432/postgres``) and dropped afterwards.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from lockgate.api.app import build_services, create_app
from lockgate.control.base import Services
from lockgate.control.identity.bootstrap import ensure_admin
from lockgate.settings import Settings

PG_ADMIN_URL = os.environ.get(
    "LOCKGATE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _pg_url(name: str) -> str:
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{name}"


@contextmanager
def scratch_pg_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for the block; its URL. Dropped afterwards."""
    name = f"lockgate_test_{secrets.token_hex(6)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _pg_url(name)
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database; its URL."""
    with scratch_pg_database() as url:
        yield url


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
"""Both databases, as fixture parameters (PostgreSQL tests carry the ``postgres`` mark)."""


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    """Settings for a server on ``backend`` with its data directory in ``tmp_path``."""
    url = request.getfixturevalue("pg_database") if backend == "postgres" else ""
    return Settings(data_dir=str(tmp_path / "data"), database_url=url, audit_checkpoint_every=10)


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=str(tmp_path / "data"), audit_checkpoint_every=10)


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    built = build_services(settings)
    try:
        yield built
    finally:
        built.database.dispose()


@pytest.fixture
def admin_token(services: Services) -> str:
    result = ensure_admin(services)
    assert result.token is not None
    return result.token


@pytest.fixture
def app(settings: Settings, services: Services) -> FastAPI:
    return create_app(settings, services)


@pytest.fixture
def client(app: FastAPI, admin_token: str) -> Iterator[TestClient]:
    """An HTTP client for the real app, authenticated as the first administrator."""
    with TestClient(app, headers={"Authorization": f"Bearer {admin_token}"}) as http:
        yield http


@pytest.fixture
def anonymous(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as http:
        yield http
