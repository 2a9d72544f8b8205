"""Delivery fixtures: real server processes shared per module, and their admin client."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import psycopg
import pytest

from tests.conftest import PG_ADMIN_URL, _pg_url
from tests.delivery.servers import Admin, LockgateServer, lockgate_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LockgateServer]:
    """One ``lockgate serve`` on SQLite for the module, with one-second heartbeats."""
    with lockgate_server(tmp_path_factory.mktemp("server")) as running:
        yield running


@pytest.fixture(scope="module")
def admin(server: LockgateServer) -> Iterator[Admin]:
    client = Admin.connect(server.url)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="module")
def module_pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for the module; its URL."""
    name = f"lockgate_test_{secrets.token_hex(6)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _pg_url(name)
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
