"""Real ``lockgate serve`` processes for delivery tests, and an admin client for their API.

Each server gets a free port, its own data directory (or a shared one for replicas of one
PostgreSQL database), a known bootstrap token and one-second stream heartbeats. It is
stopped by its PID: SIGTERM, then SIGKILL if it lingers.
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from tests.conftest import scratch_pg_database

__all__ = [
    "ADMIN_TOKEN",
    "Admin",
    "LiveProject",
    "LockgateServer",
    "backend_server",
    "free_port",
    "live_project",
    "lockgate_server",
    "start_lockgate",
    "unique",
]

ADMIN_TOKEN = "delivery-test-admin-token-0123456789"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
_counter = itertools.count(1)


def unique(prefix: str) -> str:
    """A key not used before in this test process (tests share a module's server)."""
    return f"{prefix}-{os.getpid()}-{next(_counter)}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class LockgateServer:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM and wait; SIGKILL if still running after ``timeout``. The exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT)
        return self.process.returncode


def _wait_ready(server: LockgateServer) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"lockgate serve exited {server.process.returncode}:\n{server.log_text()}"
            )
        try:
            if httpx.get(f"{server.url}/readyz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"lockgate serve not ready after {START_TIMEOUT} s:\n{server.log_text()}")


def start_lockgate(
    data_dir: Path,
    *,
    database_url: str = "",
    heartbeat: int = 1,
    name: str = "server",
    extra: tuple[str, ...] = (),
    port: int | None = None,
) -> LockgateServer:
    """Start ``lockgate serve`` and wait until it is ready; the caller stops it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCKGATE_")}
    env["LOCKGATE_BOOTSTRAP_ADMIN_TOKEN"] = ADMIN_TOKEN
    port = port or free_port()
    command = [sys.executable, "-m", "lockgate.cli.main", "serve", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--data-dir", str(data_dir)]
    command += ["--stream-heartbeat-seconds", str(heartbeat), "--log-level", "warning"]
    if database_url:
        command += ["--database-url", database_url]
    command += extra
    log = data_dir / f"{name}-{port}.log"
    with log.open("ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    server = LockgateServer(f"http://127.0.0.1:{port}", process, log)
    try:
        _wait_ready(server)
    except BaseException:
        server.stop()
        raise
    return server


@contextmanager
def lockgate_server(
    data_dir: Path,
    *,
    database_url: str = "",
    heartbeat: int = 1,
    name: str = "server",
    extra: tuple[str, ...] = (),
    port: int | None = None,
) -> Iterator[LockgateServer]:
    """A running ``lockgate serve``; stopped (by PID) when the block ends."""
    server = start_lockgate(
        data_dir, database_url=database_url, heartbeat=heartbeat, name=name, extra=extra, port=port
    )
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def backend_server(data_dir: Path, backend: str) -> Iterator[LockgateServer]:
    """A running ``lockgate serve`` on ``backend``: ``sqlite`` in ``data_dir``, or
    ``postgres`` on a scratch database dropped when the block ends."""
    with ExitStack() as stack:
        url = stack.enter_context(scratch_pg_database()) if backend == "postgres" else ""
        yield stack.enter_context(lockgate_server(data_dir, database_url=url))


class LiveProject:
    """A project and environment on a running server: its SDK key and the admin API."""

    def __init__(self, server: LockgateServer, project: str, environment: str) -> None:
        self.server = server
        self.project = project
        self.environment = environment
        self.admin = Admin.connect(server.url)
        self.admin.project(project, environment)
        self.key, _ = self.admin.sdk_key(project, environment)

    def pending(self, behavior: str, timeout: float = 20.0) -> dict[str, Any]:
        """The behavior's pending runtime approval request, once the server has it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = self.admin.http.get(
                f"/api/v1/projects/{self.project}/runtime-approvals",
                params={"behavior": behavior, "state": "pending"},
            )
            items = r.json()["items"]
            if items:
                return dict(items[0])
            time.sleep(0.05)
        raise AssertionError(f"no pending request for {behavior}")


L = TypeVar("L", bound=LiveProject)


@contextmanager
def live_project(data_dir: Path, backend: str, make: Callable[[LockgateServer], L]) -> Iterator[L]:
    """``make(server)`` on a server of its own on ``backend``; closed when the block ends."""
    with backend_server(data_dir, backend) as server:
        live = make(server)
        try:
            yield live
        finally:
            live.admin.close()


@dataclass
class Admin:
    """The management API as the bootstrap administrator, with flag versions remembered."""

    http: Any  # httpx.Client or a FastAPI TestClient
    versions: dict[tuple[str, str, str], int] = field(default_factory=dict)

    @classmethod
    def connect(cls, url: str) -> Admin:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        return cls(httpx.Client(base_url=url, headers=headers, timeout=10.0))

    def _ok(self, response: Any, *statuses: int) -> Any:
        assert response.status_code in (statuses or (200,)), response.text
        return response

    def project(self, key: str, *environments: str) -> None:
        self._ok(self.http.post("/api/v1/projects", json={"key": key}), 201)
        for env in environments:
            url = f"/api/v1/projects/{key}/environments"
            self._ok(self.http.post(url, json={"key": env}), 201)

    def flag(self, project: str, key: str, kind: str = "boolean", **fields: Any) -> None:
        body = {"key": key, "kind": kind, **fields}
        self._ok(self.http.post(f"/api/v1/projects/{project}/flags", json=body), 201)

    def configure(self, project: str, flag: str, env: str, **config: Any) -> int:
        """Change a flag's configuration in one environment; its new version."""
        url = f"/api/v1/projects/{project}/flags/{flag}/environments/{env}"
        version = self.versions.get((project, flag, env))
        if version is None:
            version = int(self._ok(self.http.get(url)).headers["etag"].strip('"'))
        response = self._ok(self.http.patch(url, json=config, headers={"If-Match": f'"{version}"'}))
        new = int(response.headers["etag"].strip('"'))
        self.versions[(project, flag, env)] = new
        return new

    def archive(self, project: str, flag: str) -> None:
        url = f"/api/v1/projects/{project}/flags/{flag}"
        version = self._ok(self.http.get(url)).headers["etag"]
        self._ok(self.http.patch(url, json={"archived": True}, headers={"If-Match": version}))

    def segment(self, project: str, key: str, **fields: Any) -> int:
        url = f"/api/v1/projects/{project}/segments"
        response = self._ok(self.http.post(url, json={"key": key, **fields}), 201)
        return int(response.headers["etag"].strip('"'))

    def update_segment(self, project: str, key: str, version: int, **fields: Any) -> int:
        url = f"/api/v1/projects/{project}/segments/{key}"
        response = self._ok(self.http.patch(url, json=fields, headers={"If-Match": f'"{version}"'}))
        return int(response.headers["etag"].strip('"'))

    def delete_segment(self, project: str, key: str, version: int) -> None:
        url = f"/api/v1/projects/{project}/segments/{key}"
        self._ok(self.http.delete(url, headers={"If-Match": f'"{version}"'}), 204)

    def sdk_key(self, project: str, env: str, kind: str = "server") -> tuple[str, str]:
        """A new SDK key: ``(value, prefix)``."""
        url = f"/api/v1/projects/{project}/environments/{env}/sdk-keys"
        body = self._ok(self.http.post(url, json={"kind": kind}), 201).json()
        return body["key"], body["prefix"]

    def revoke(self, project: str, env: str, prefix: str) -> None:
        url = f"/api/v1/projects/{project}/environments/{env}/sdk-keys/{prefix}"
        self._ok(self.http.delete(url))

    def stored_version(self, project: str, env: str) -> int:
        """The environment's snapshot version in the database."""
        url = f"/api/v1/projects/{project}/environments/{env}"
        return int(self._ok(self.http.get(url)).json()["snapshot_version"])

    def snapshot(self, key: str, *, at_least: int = 0, timeout: float = 5.0) -> dict[str, Any]:
        """``GET /sdk/v1/snapshot``, waiting (bounded) until it has reached ``at_least``.

        The endpoint serves the server's in-memory copy, which follows commits shortly
        after they are made (it is not read-your-writes).
        """
        deadline = time.monotonic() + timeout
        while True:
            response = self.http.get("/sdk/v1/snapshot", headers={"Authorization": f"Bearer {key}"})
            result: dict[str, Any] = self._ok(response).json()
            if result["version"] >= at_least:
                return result
            assert time.monotonic() < deadline, f"snapshot stuck at {result['version']}"
            time.sleep(0.02)

    def current(self, key: str, project: str, env: str) -> dict[str, Any]:
        """The snapshot once the server has caught up with the database."""
        return self.snapshot(key, at_least=self.stored_version(project, env))

    def close(self) -> None:
        self.http.close()
