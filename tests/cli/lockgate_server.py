"""A real ``lockgate serve`` process for CLI tests: free port, temp data dir, known token."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ADMIN_TOKEN = "cli-test-admin-token-0123456789"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


@dataclass(frozen=True)
class Server:
    url: str
    token: str
    paths: frozenset[str]
    log: Path

    def has_route(self, path: str) -> bool:
        return path in self.paths


@dataclass(frozen=True)
class Run:
    """One in-process ``lockgate`` command: exit code and what it printed."""

    code: int
    out: str
    err: str

    @property
    def json(self) -> Any:
        return json.loads(self.out)


Cli = Callable[..., Run]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"lockgate serve exited {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"lockgate serve not ready after {START_TIMEOUT} s:\n{log.read_text()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the server we started, by its PID: SIGTERM, then SIGKILL if it lingers."""
    process.terminate()
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(STOP_TIMEOUT)


@contextmanager
def running_server(
    data_dir: Path,
    database_url: str = "",
    data_name: str = "data",
    extra: tuple[str, ...] = (),
) -> Iterator[Server]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCKGATE_")}
    env["LOCKGATE_BOOTSTRAP_ADMIN_TOKEN"] = ADMIN_TOKEN
    command = [sys.executable, "-m", "lockgate.cli.main", "serve", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--data-dir", str(data_dir / data_name)]
    if database_url:
        command += ["--database-url", database_url]
    command += extra
    log = data_dir / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            _wait_ready(url, process, log)
            paths = httpx.get(f"{url}/openapi.json", timeout=5.0).json()["paths"]
            yield Server(url, ADMIN_TOKEN, frozenset(paths), log)
        finally:
            _stop(process)
