"""Fixtures shared by the control tests: a real Prometheus (Debian's package, fetched by
./scripts/prometheus) scraping an exporter the tests run."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
EXPOSITION = """\
# TYPE checkout_errors_total counter
checkout_errors_total{variant="stable"} 3
checkout_errors_total{variant="generated"} 12
# TYPE checkout_error_budget gauge
checkout_error_budget 0.25
# TYPE assistant_errors_ratio gauge
assistant_errors_ratio{variant="off"} 0.02
assistant_errors_ratio{variant="full"} 0.09
# TYPE assistant_requests_total counter
assistant_requests_total{variant="off"} 50000
assistant_requests_total{variant="full"} 400
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class _Exporter(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = EXPOSITION.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture(scope="session")
def exporter() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Exporter)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _prometheus_binary() -> str:
    """Debian's prometheus, unpacked by ./scripts/prometheus (fails loudly when it cannot)."""
    done = subprocess.run(
        [str(ROOT / "scripts" / "prometheus")], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"./scripts/prometheus could not provide Prometheus: {done.stderr}")
    return done.stdout.strip().splitlines()[-1]


@dataclass
class Prometheus:
    url: str


@pytest.fixture(scope="session")
def prometheus(exporter: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    binary = _prometheus_binary()
    work = tmp_path_factory.mktemp("prometheus")
    config = work / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: exporter\n"
        f"    static_configs:\n      - targets: ['{exporter}']\n"
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (work / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={work / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for_series(url, process, work / "prometheus.log")
        yield Prometheus(url)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        log.close()


def _wait_for_series(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Until the exporter has been scraped (at most 60 s)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"prometheus exited: {log.read_text()[-2000:]}")
        try:
            answer = httpx.get(
                f"{url}/api/v1/query", params={"query": "checkout_errors_total"}, timeout=2
            )
            if answer.status_code == 200 and len(answer.json()["data"]["result"]) == 2:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    pytest.fail(f"prometheus never scraped the exporter: {log.read_text()[-2000:]}")
