"""Delivery fixtures: real server processes shared per module, and their admin client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import scratch_pg_database
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
    with scratch_pg_database() as url:
        yield url
