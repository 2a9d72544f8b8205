"""A real headless Chromium (Debian's, via ``scripts/chromium``) and a real ``lockgate serve``
for the dashboard's browser tests (one of each per test module, tests/dashboard/conftest.py).

Playwright drives the system Chromium through ``executable_path``; its own browser download
is never used. Screenshots go to ``.artifacts/dashboard/`` (git-ignored; CI keeps it).
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, Page

__all__ = [
    "ARTIFACTS",
    "CHROMIUM_ARGS",
    "PASSWORD",
    "World",
    "chromium_path",
    "login",
    "screenshot",
]

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("LOCKGATE_ARTIFACTS", ROOT / ".artifacts")) / "dashboard"
PASSWORD = "correct-horse-battery-staple"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
_serial = itertools.count(1)


def chromium_path() -> str:
    """Debian's Chromium, installed by ``scripts/chromium`` (run by ``scripts/bootstrap``)."""
    found = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(found).exists():
        found = subprocess.run(
            [str(ROOT / "scripts" / "chromium")], capture_output=True, text=True, check=True
        ).stdout.strip()
    return found


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def login(browser: Browser, base_url: str, username: str) -> Page:
    """A new browser context (its own cookies), logged in as ``username``."""
    context = browser.new_context(base_url=base_url)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto("/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "/login" not in url)
    return page


@dataclass
class World:
    """One project of the shared server: staging and a protected production, three users."""

    url: str
    http: httpx.Client
    project: str = field(default_factory=lambda: f"shop{next(_serial)}")

    def ok(self, response: httpx.Response, *status: int) -> Any:
        assert response.status_code in (status or (200,)), response.text
        return response.json() if response.content else None

    def build(self) -> World:
        p = self.project
        self.ok(self.http.post("/api/v1/projects", json={"key": p}), 201)
        for env, protected in (("staging", False), ("production", True)):
            body = {"key": env, "protected": protected}
            self.ok(self.http.post(f"/api/v1/projects/{p}/environments", json=body), 201)
        for user, role in (("ann", "admin"), ("bob", "approver"), ("vic", "viewer")):
            body = {"role": role, "reason": "team"}
            self.ok(self.http.put(f"/api/v1/projects/{p}/members/{user}", json=body), 200, 201)
        return self

    def flag(self, key: str, kind: str = "boolean", **fields: Any) -> None:
        body = {"key": key, "kind": kind, "reason": "generated", **fields}
        self.ok(self.http.post(f"/api/v1/projects/{self.project}/flags", json=body), 201)

    def config(self, key: str, env: str) -> dict[str, Any]:
        path = f"/api/v1/projects/{self.project}/flags/{key}/environments/{env}"
        found: dict[str, Any] = self.ok(self.http.get(path))
        return found

    def configure(self, key: str, env: str, **values: Any) -> None:
        path = f"/api/v1/projects/{self.project}/flags/{key}/environments/{env}"
        version = self.config(key, env)["version"]
        headers = {"If-Match": f'"{version}"'}
        self.ok(self.http.patch(path, json={**values, "reason": "setup"}, headers=headers))

    def sdk_key(self, env: str) -> str:
        path = f"/api/v1/projects/{self.project}/environments/{env}/sdk-keys"
        created = self.ok(self.http.post(path, json={"kind": "server", "reason": "t"}), 201)
        return str(created["key"])
