"""Prometheus as a guardrail source: an instant query, read as one value per variation.

The guardrail evaluator calls :meth:`PrometheusSource.read`; it never sees HTTP::

    source = PrometheusSource("http://prometheus.internal:9090", timeout=5.0)
    source.read('sum(rate(http_errors_total{app="checkout"}[5m]))')
    # {None: 0.42}                                   (one series: an absolute threshold)
    source.read('sum by (variant) (rate(http_errors_total[5m]))', "variant")
    # {"stable": 0.02, "generated": 0.09}           (per variation, by the series' label)

Only ``GET /api/v1/query`` is used (an instant query). Every failure — the server cannot
be reached or answers late, answers with an error, answers something that is not
Prometheus's JSON, or a result that does not fit the request — raises
:class:`PrometheusError` with a message fit for a guardrail's state and audit evidence.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import httpx

__all__ = ["PrometheusError", "PrometheusSource"]

MAX_SERIES = 1_000
"""Series one query may return (more is an error: aggregate the query)."""


class PrometheusError(Exception):
    """A query could not be read; the message says why."""


class PrometheusSource:
    """Reads instant queries from the Prometheus server at ``base_url``."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 5.0,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError("base_url must be an http:// or https:// URL")
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout),
            headers=dict(headers or {}),
            transport=transport,
            follow_redirects=False,
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> PrometheusSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read(
        self, query: str, variation_label: str | None = None, *, at: datetime | None = None
    ) -> dict[str | None, float]:
        """The query's value now (or ``at``).

        Without ``variation_label`` the query must return one series (or a scalar): the
        answer is ``{None: value}``. With it, every series must carry that label, whose value
        names the variation: the answer is ``{variation: value}``, one entry per series. A
        query with no series answers ``{}`` (no data); ``NaN`` values are left out.
        """
        params = {"query": query}
        if at is not None:
            params["time"] = f"{at.timestamp():.3f}"
        data = self._query(params)
        result_type, result = data.get("resultType"), data.get("result")
        if result_type == "scalar" and variation_label is None:
            value = _number(result)
            return {} if math.isnan(value) else {None: value}
        if result_type != "vector" or not isinstance(result, list):
            raise PrometheusError(
                f"the query returned a {result_type}; an instant vector or scalar is needed"
            )
        if len(result) > MAX_SERIES:
            raise PrometheusError(f"the query returned {len(result)} series (at most {MAX_SERIES})")
        return _by_variation(result, variation_label)

    def _query(self, params: dict[str, str]) -> dict[str, Any]:
        where = f"{self.base_url}/api/v1/query"
        try:
            response = self._client.get("/api/v1/query", params=params)
        except httpx.TimeoutException:
            raise PrometheusError(f"{where} did not answer in time") from None
        except httpx.HTTPError as exc:
            raise PrometheusError(f"{where} could not be reached: {exc}") from None
        try:
            body = response.json()
        except ValueError:
            raise PrometheusError(
                f"{where} answered {response.status_code} without Prometheus's JSON"
            ) from None
        if not isinstance(body, dict):
            raise PrometheusError(f"{where} answered {response.status_code}: not an object")
        if body.get("status") != "success":
            kind, error = body.get("errorType", "error"), body.get("error", "no message")
            raise PrometheusError(f"{where} answered {response.status_code}: {kind}: {error}")
        data = body.get("data")
        if not isinstance(data, dict):
            raise PrometheusError(f"{where} answered success without data")
        return data


def _number(sample: Any) -> float:
    """``[timestamp, "value"]`` as a float."""
    if not isinstance(sample, list) or len(sample) != 2 or not isinstance(sample[1], str):
        raise PrometheusError("a sample is not [time, value]")
    try:
        return float(sample[1])
    except ValueError:
        raise PrometheusError(f"a sample's value {sample[1]!r} is not a number") from None


def _by_variation(result: list[Any], label: str | None) -> dict[str | None, float]:
    if label is None and len(result) > 1:
        raise PrometheusError(
            f"the query returned {len(result)} series; aggregate it to one (e.g. sum(...)) "
            "or name the label that carries the variation"
        )
    out: dict[str | None, float] = {}
    for series in result:
        if not isinstance(series, dict) or not isinstance(series.get("metric"), dict):
            raise PrometheusError("a series has no labels")
        value = _number(series.get("value"))
        if label is None:
            name: str | None = None
        else:
            name = series["metric"].get(label)
            if not isinstance(name, str):
                raise PrometheusError(f"a series has no label {label!r}: {series['metric']}")
            if name in out:
                raise PrometheusError(
                    f"two series have {label}={name!r}; aggregate by {label} (sum by ({label}))"
                )
        if not math.isnan(value):
            out[name] = value
    return out
