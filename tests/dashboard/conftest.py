"""Fixtures of the browser tests: one ``lockgate serve`` and one Chromium per module.

Module scope, not session: Playwright's synchronous API keeps an event loop running on the
main thread while it is started, and tests of other modules that call ``asyncio.run``
must not find it there.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.dashboard.browser import CHROMIUM_ARGS, PASSWORD, World, chromium_path
from tests.delivery.servers import ADMIN_TOKEN, LockgateServer, lockgate_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LockgateServer]:
    data = Path(tmp_path_factory.mktemp("dashboard")) / "data"
    with lockgate_server(data) as running:
        yield running


@pytest.fixture(scope="module")
def admin_http(server: LockgateServer) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=20.0) as http:
        for name in ("ann", "bob", "vic"):
            body = {"username": name, "password": PASSWORD, "reason": "team"}
            r = http.post("/api/v1/users", json=body)
            assert r.status_code == 201, r.text
        yield http


@pytest.fixture
def world(server: LockgateServer, admin_http: httpx.Client) -> World:
    return World(server.url, admin_http).build()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()
