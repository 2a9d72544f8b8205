"""Fixtures for running the vectors through a real server (one server per suite file)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from fastapi.testclient import TestClient

from lockgate.api.app import build_services, create_app
from lockgate.control.identity.bootstrap import ensure_admin
from lockgate.settings import Settings
from tests.spec.server import LoadedSuite, load_suite, suite_snapshots


class SuiteServers:
    """Loads each suite into its own fresh SQLite-backed server on first use."""

    def __init__(self, factory: pytest.TempPathFactory, stack: ExitStack) -> None:
        self.factory = factory
        self.stack = stack
        self.snapshots = suite_snapshots()
        self.loaded: dict[str, LoadedSuite] = {}

    def get(self, suite: str) -> LoadedSuite:
        if suite not in self.loaded:
            self.loaded[suite] = load_suite(self._client(suite), self.snapshots[suite])
        return self.loaded[suite]

    def _client(self, suite: str) -> TestClient:
        settings = Settings(data_dir=str(self.factory.mktemp(f"server-{suite}") / "data"))
        services = build_services(settings)
        self.stack.callback(services.database.dispose)
        result = ensure_admin(services)
        headers = {"Authorization": f"Bearer {result.token}"}
        client = TestClient(create_app(settings, services), headers=headers)
        return self.stack.enter_context(client)


@pytest.fixture(scope="module")
def suite_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SuiteServers]:
    with ExitStack() as stack:
        yield SuiteServers(tmp_path_factory, stack)
