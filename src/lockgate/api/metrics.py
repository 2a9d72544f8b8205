"""``/metrics``: the server's own state in the Prometheus text format.

What is exported (all names start with ``lockgate_``):

- ``http_requests_total{method,route,status}`` — every answered request, by the route's
  template (``/api/v1/projects/{project}``, never the raw path, so label values stay few);
  requests no route matched count as ``route="unmatched"``. Snapshot polls and streams
  answered by the delivery fast path are counted there, at the cost of one dictionary
  update.
- ``http_request_duration_seconds{method,route}`` — a histogram of the time to the end of
  the response, for every request that goes through the application (stream routes are
  left out: their duration is the stream's lifetime).
- ``sdk_streams_open`` — SDK streams this process holds now.
- ``change_propagation_seconds`` — from the moment this process learns of a committed
  change (its own commit, or another replica's notification) to the moment the new
  version has been written to every stream of the environment.
- ``change_requests_open{project}`` — change requests waiting for approval or for their
  scheduled time (read from the database at most every five seconds).
- ``guardrails{project,state}`` — guardrails by their last evaluated state (``healthy``,
  ``breached``, ``insufficient_data``, ``no_data``).
- ``webhook_deliveries{project,state}`` — webhook deliveries ``pending`` (the backlog) and
  ``failed`` (gave up; listed and replayable), and ``webhook_backlog_oldest_seconds`` — the
  age of the oldest pending delivery (0 when none).
- ``background_job_runs_total{job,outcome}`` and ``background_job_duration_seconds{job}``
  — each background job's runs (``ok`` or ``failed``) and how long they took.

Each application has its own registry, so two apps in one process never share counts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lockgate.control.base import Services
from lockgate.control.governance.requests import PENDING_STATES
from lockgate.store.tables import (
    change_requests,
    guardrails,
    projects,
    webhook_deliveries,
    webhook_subscriptions,
)

__all__ = ["Metrics", "RequestMetrics"]

UNMATCHED = "unmatched"
_STREAM_ROUTES = frozenset({"/sdk/v1/stream", "/sdk/v1/approvals/{approval_id}"})  # long polls
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_PROPAGATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_OPEN_REQUESTS_TTL = 5.0

RequestKey = tuple[str, str, int]
"""(method, route template, status)."""


class Metrics:
    """The registry and the instruments the server's parts report to."""

    def __init__(self, services: Services, stream_count: Callable[[], int]) -> None:
        self.registry = CollectorRegistry()
        self.requests: dict[RequestKey, int] = {}
        """Answered requests; updated on the event loop only (plain ``int`` additions)."""
        self.durations = Histogram(
            "lockgate_http_request_duration_seconds",
            "Time to the end of the response, by route template",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.propagation = Histogram(
            "lockgate_change_propagation_seconds",
            "From learning of a committed change to writing it to every stream",
            buckets=_PROPAGATION_BUCKETS,
            registry=self.registry,
        )
        self.job_runs = Counter(
            "lockgate_background_job_runs",
            "Background job runs, by outcome",
            ["job", "outcome"],
            registry=self.registry,
        )
        self.job_durations = Histogram(
            "lockgate_background_job_duration_seconds",
            "How long each background job run took",
            ["job"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_StateCollector(self, services, stream_count))

    def count_request(self, method: str, route: str, status: int) -> None:
        key = (method, route, status)
        self.requests[key] = self.requests.get(key, 0) + 1

    def observe_job(self, job: str, ok: bool, seconds: float) -> None:
        """Called by the background jobs after each job's run (any thread)."""
        self.job_runs.labels(job, "ok" if ok else "failed").inc()
        self.job_durations.labels(job).observe(seconds)


class _StateCollector(Collector):
    """Values read when scraped: request counts, open streams, open change requests."""

    def __init__(
        self, metrics: Metrics, services: Services, stream_count: Callable[[], int]
    ) -> None:
        self.metrics = metrics
        self.services = services
        self.stream_count = stream_count
        self._open: tuple[float, _DatabaseGauges] | None = None
        self._lock = threading.Lock()

    def collect(self) -> Iterable[Metric]:
        requests = CounterMetricFamily(
            "lockgate_http_requests",
            "Answered HTTP requests, by route template and status",
            labels=["method", "route", "status"],
        )
        for (method, route, status), count in list(self.metrics.requests.items()):
            requests.add_metric([method, route, str(status)], count)
        yield requests
        yield GaugeMetricFamily(
            "lockgate_sdk_streams_open", "SDK streams held open now", value=self.stream_count()
        )
        pending = GaugeMetricFamily(
            "lockgate_change_requests_open",
            "Change requests waiting for approvals or their scheduled time",
            labels=["project"],
        )
        read = self._read()
        for project, count in sorted(read.open_requests.items()):
            pending.add_metric([project], count)
        yield pending
        states = GaugeMetricFamily(
            "lockgate_guardrails",
            "Guardrails by their last evaluated state",
            labels=["project", "state"],
        )
        for (project, state), count in sorted(read.guardrails.items()):
            states.add_metric([project, state], count)
        yield states
        deliveries = GaugeMetricFamily(
            "lockgate_webhook_deliveries",
            "Webhook deliveries pending (the backlog) and failed (given up, replayable)",
            labels=["project", "state"],
        )
        for (project, state), count in sorted(read.deliveries.items()):
            deliveries.add_metric([project, state], count)
        yield deliveries
        yield GaugeMetricFamily(
            "lockgate_webhook_backlog_oldest_seconds",
            "Age of the oldest pending webhook delivery (0 when none)",
            value=read.oldest_pending,
        )

    def _read(self) -> _DatabaseGauges:
        """What the gauges read from the database, at most every few seconds."""
        with self._lock:
            now = time.monotonic()
            if self._open is not None and now - self._open[0] < _OPEN_REQUESTS_TTL:
                return self._open[1]
            with self.services.view() as conn:
                read = _DatabaseGauges(
                    open_requests={
                        row[0]: int(row[1])
                        for row in conn.execute(
                            select(projects.c.key, func.count(change_requests.c.id))
                            .select_from(projects.outerjoin(change_requests, _open_of_project()))
                            .group_by(projects.c.key)
                        )
                    },
                    guardrails={
                        (row[0], row[1]): int(row[2])
                        for row in conn.execute(
                            select(projects.c.key, guardrails.c.state, func.count())
                            .join(projects, projects.c.id == guardrails.c.project_id)
                            .group_by(projects.c.key, guardrails.c.state)
                        )
                    },
                    deliveries={
                        (row[0], row[1]): int(row[2])
                        for row in conn.execute(
                            select(projects.c.key, webhook_deliveries.c.state, func.count())
                            .join(
                                webhook_subscriptions,
                                webhook_subscriptions.c.id == webhook_deliveries.c.subscription_id,
                            )
                            .join(projects, projects.c.id == webhook_subscriptions.c.project_id)
                            .where(webhook_deliveries.c.state.in_(("pending", "failed")))
                            .group_by(projects.c.key, webhook_deliveries.c.state)
                        )
                    },
                    oldest_pending=_age(
                        conn.execute(
                            select(func.min(webhook_deliveries.c.created_at)).where(
                                webhook_deliveries.c.state == "pending"
                            )
                        ).scalar(),
                        self.services.clock(),
                    ),
                )
            self._open = (now, read)
            return read


@dataclass(frozen=True)
class _DatabaseGauges:
    open_requests: dict[str, int]
    guardrails: dict[tuple[str, str], int]
    deliveries: dict[tuple[str, str], int]
    oldest_pending: float


def _age(stamp: str | None, now: datetime) -> float:
    if not stamp:
        return 0.0
    created = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return max(0.0, (now - created).total_seconds())


def _open_of_project() -> Any:
    return (change_requests.c.project_id == projects.c.id) & change_requests.c.state.in_(
        list(PENDING_STATES)
    )


class RequestMetrics:
    """ASGI middleware: counts each request by route template and status, and times it."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers when the application fails before a start

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or UNMATCHED
            method = scope["method"]
            self.metrics.count_request(method, template, status)
            if template not in _STREAM_ROUTES:
                self.metrics.durations.labels(method, template).observe(
                    time.perf_counter() - started
                )
