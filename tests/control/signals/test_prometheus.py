"""The Prometheus source against a real Prometheus (Debian's package, ./scripts/prometheus,
started by ``tests/control/conftest.py``) scraping an exporter the tests run; and its errors."""

from __future__ import annotations

import socket

import pytest

from lockgate.control.signals.prometheus import PrometheusError, PrometheusSource
from tests.control.conftest import Prometheus, free_port


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
    source = PrometheusSource(f"http://127.0.0.1:{free_port()}", timeout=1)
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
