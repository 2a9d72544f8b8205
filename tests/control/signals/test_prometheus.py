"""The Prometheus source against a real Prometheus (Debian's package, ./scripts/prometheus)
scraping an exporter this test runs; and its errors."""

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

from lockgate.control.signals.prometheus import PrometheusError, PrometheusSource

ROOT = Path(__file__).resolve().parents[3]
EXPOSITION = """\
# TYPE checkout_errors_total counter
checkout_errors_total{variant="stable"} 3
checkout_errors_total{variant="generated"} 12
# TYPE checkout_error_budget gauge
checkout_error_budget 0.25
"""


def _free_port() -> int:
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


@pytest.fixture(scope="module")
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


@pytest.fixture(scope="module")
def prometheus(exporter: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    binary = _prometheus_binary()
    work = tmp_path_factory.mktemp("prometheus")
    config = work / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: exporter\n"
        f"    static_configs:\n      - targets: ['{exporter}']\n"
    )
    port = _free_port()
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


def test_a_query_by_variation_label(prometheus: Prometheus) -> None:
    with PrometheusSource(prometheus.url) as source:
        values = source.read("sum by (variant) (checkout_errors_total)", "variant")
    assert values == {"stable": 3.0, "generated": 12.0}


def test_an_absolute_query_and_a_scalar(prometheus: Prometheus) -> None:
    with PrometheusSource(prometheus.url) as source:
        assert source.read("checkout_error_budget") == {None: 0.25}
        assert source.read("sum(checkout_errors_total)") == {None: 15.0}
        assert source.read("scalar(checkout_error_budget) * 2") == {None: 0.5}
        assert source.read("absent_series_total") == {}


@pytest.mark.parametrize(
    ("query", "label", "message"),
    [
        ("checkout_errors_total", None, "returned 2 series; aggregate it"),
        ("sum by (job) (checkout_errors_total)", "variant", "has no label 'variant'"),
        ("checkout_errors_total[1m]", None, "returned a matrix"),
        ("sum(", None, "bad_data"),
    ],
)
def test_queries_that_do_not_fit_are_clear_errors(
    prometheus: Prometheus, query: str, label: str | None, message: str
) -> None:
    with PrometheusSource(prometheus.url) as source, pytest.raises(PrometheusError) as raised:
        source.read(query, label)
    assert message in str(raised.value)


def test_an_unreachable_server_is_a_clear_error() -> None:
    source = PrometheusSource(f"http://127.0.0.1:{_free_port()}", timeout=1)
    with source, pytest.raises(PrometheusError, match="could not be reached"):
        source.read("up")


def test_a_server_that_is_not_prometheus_is_a_clear_error(exporter: str) -> None:
    source = PrometheusSource(f"http://{exporter}")
    with source, pytest.raises(PrometheusError, match="without Prometheus's JSON"):
        source.read("up")


def test_a_slow_server_times_out() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts the connection, never answers
    try:
        port = listener.getsockname()[1]
        source = PrometheusSource(f"http://127.0.0.1:{port}", timeout=0.3)
        with source, pytest.raises(PrometheusError, match="did not answer in time"):
            source.read("up")
    finally:
        listener.close()
