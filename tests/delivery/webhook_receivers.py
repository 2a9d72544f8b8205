"""Start and drive real webhook receivers (:mod:`tests.delivery.webhook_receiver`)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.delivery.servers import free_port

__all__ = ["Receiver", "receiver"]

SCRIPT = Path(__file__).with_name("webhook_receiver.py")


class Receiver:
    """A receiver process on 127.0.0.1 (stopped by its PID when the test ends)."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)
        self.trust([])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(SCRIPT), str(self.directory), str(self.port)],
            stdout=subprocess.PIPE,
        )
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == b"ready"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()

    def trust(self, secrets: list[str]) -> None:
        (self.directory / "secrets.json").write_text(json.dumps(secrets))

    def answer(self, *answers: dict[str, Any]) -> None:
        (self.directory / "script.json").write_text(json.dumps(list(answers)))

    def requests(self) -> list[dict[str, Any]]:
        log = self.directory / "requests.jsonl"
        if not log.exists():
            return []
        return [json.loads(line) for line in log.read_text().splitlines()]

    def payloads(self) -> list[dict[str, Any]]:
        return [json.loads(r["body"]) for r in self.requests()]

    def wait_for(self, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.requests()
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"{len(self.requests())} requests received, {count} expected")


@contextmanager
def receiver(directory: Path) -> Iterator[Receiver]:
    running = Receiver(directory)
    running.start()
    try:
        yield running
    finally:
        running.stop()
