"""The composition root: the one place that builds concrete classes and wires them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from lockgate import __version__, dashboard
from lockgate.api import docs_page, problems
from lockgate.api.auth_first import CredentialGate
from lockgate.api.deps import mark_if_match_required
from lockgate.api.limits import RequestLimits
from lockgate.api.metrics import Metrics, RequestMetrics
from lockgate.api.routes import (
    alert_triggers,
    approvals,
    audit,
    auth,
    contracts,
    decisions,
    evaluate,
    evidence,
    flags,
    guardrails,
    health,
    lifecycle,
    members,
    metrics,
    ofrep,
    projects,
    reversal,
    runtime_approvals,
    sdk,
    sdk_keys,
    segments,
    signals,
    tokens,
    tools,
    users,
    webhooks,
)
from lockgate.control.base import Services
from lockgate.control.identity.login_limits import LoginLimiter
from lockgate.control.jobs import (
    GUARDRAILS_LOCK_KEY,
    BackgroundJobs,
    guardrail_jobs,
    standard_jobs,
)
from lockgate.delivery.admission import StreamAdmission
from lockgate.delivery.auth import KeyCache
from lockgate.delivery.fastpath import DeliveryFastPath
from lockgate.delivery.hub import DeliveryHub
from lockgate.delivery.pg_notify import ChangeListener
from lockgate.delivery.webhooks import WebhookDispatcher, WebhookSender
from lockgate.engine.budget import ContextLimits
from lockgate.settings import (
    Settings,
    behavior_lifetimes,
    decision_retention,
    trusted_proxy_list,
)
from lockgate.store import migrate
from lockgate.store.db import Database

__all__ = ["build_services", "create_app"]

ROUTERS = [
    health.router,
    metrics.router,
    projects.router,
    flags.router,
    contracts.router,
    segments.router,
    tools.router,
    approvals.router,
    reversal.router,
    lifecycle.router,
    guardrails.router,
    runtime_approvals.router,
    audit.router,
    evidence.router,
    webhooks.router,
    evaluate.router,
    auth.router,
    users.router,
    members.router,
    tokens.router,
    sdk_keys.router,
    sdk.router,
    decisions.sdk_router,
    decisions.router,
    signals.router,
    alert_triggers.router,
    ofrep.router,
]


def build_services(settings: Settings, *, run_migrations: bool = True) -> Services:
    """Open the database (migrating it), load the audit signing key, build the services."""
    from lockgate.store import anchors, checkpoints

    anchor_path = None  # checked first: a bad setting opens nothing
    if settings.audit_anchor_file:
        anchor_path = anchors.check_anchor_path(settings.audit_anchor_file, settings.data_path)
    database = Database(
        settings.effective_database_url,
        connect_timeout=settings.database_connect_timeout_seconds or 5,
    )
    if run_migrations:
        migrate.upgrade(database)
    signer = checkpoints.Signer.load_or_create(checkpoints.signing_key_path(settings))
    if anchor_path is not None:
        signer.anchor = anchors.AnchorFile(anchor_path, signer)
        with database.read() as conn:  # what was signed while the file was unreachable
            signer.anchor.catch_up(conn)
    return Services(
        database=database,
        signer=signer,
        checkpoint_every=settings.audit_checkpoint_every,
        change_request_ttl=timedelta(days=settings.change_request_ttl_days),
        webhooks=settings.webhook_policy(),
        decision_retention=decision_retention(settings),
        stale_days=max(1, settings.stale_days),
        archive_quiet_days=max(0, settings.archive_quiet_days),
        behavior_lifetimes=behavior_lifetimes(settings),
        prometheus_url=settings.prometheus_url,
        prometheus_timeout=float(max(1, settings.prometheus_timeout_seconds)),
    )


def _lifespan(settings: Settings, services: Services) -> object:
    """Start the delivery hub (and, on PostgreSQL, the replica change listener)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        hub: DeliveryHub = app.state.hub
        await hub.start()
        listener = None
        if not services.database.is_sqlite:
            listener = ChangeListener(
                services.database.url,
                on_change=hub.notify,
                on_resync=hub.request_resync,
                on_approval=hub.approvals.notify,
                on_reconnect=hub.approvals.notify_all,
                on_identity=services.principals.clear,
                connect_timeout=services.database.connect_timeout,
            )
            listener.start()
        jobs = BackgroundJobs(
            services,
            standard_jobs(
                services,
                checkpoint_every=settings.audit_checkpoint_every,
                checkpoint_minutes=settings.audit_checkpoint_minutes,
                minute_retention_hours=settings.signals_minute_retention_hours,
            ),
            observe=app.state.metrics.observe_job,
        )
        jobs_task = asyncio.create_task(jobs.run_forever(settings.background_job_seconds))
        sender = WebhookSender(services.webhooks)
        dispatcher = WebhookDispatcher(services, sender)
        services.outbox_wake = dispatcher.wake
        webhooks_task = asyncio.create_task(
            dispatcher.run_forever(max(0.2, float(settings.webhook_poll_seconds)))
        )
        guard_task = None
        if settings.guardrail_cycle_seconds > 0:
            guard = BackgroundJobs(services, guardrail_jobs(services), lock_key=GUARDRAILS_LOCK_KEY)
            guard_task = asyncio.create_task(guard.run_forever(settings.guardrail_cycle_seconds))
        try:
            async with _mcp_running(app):
                yield
        finally:
            webhooks_task.cancel()
            services.outbox_wake = None
            jobs_task.cancel()
            if guard_task is not None:
                guard_task.cancel()
            if listener is not None:
                listener.stop()
            await hub.stop()

    return lifespan


def _mcp_running(app: FastAPI) -> AbstractAsyncContextManager[None]:
    endpoint = app.state.mcp
    return nullcontext() if endpoint is None else endpoint.running()


def _mount_mcp(app: FastAPI, settings: Settings, services: Services) -> dict[str, Any]:
    """MCP over streamable HTTP at ``/mcp`` (unless turned off); its credential check."""
    app.state.mcp = None
    if not settings.mcp_http:
        return {}
    from lockgate.api.mcp_http import MCP_METHODS, MCP_PATH, McpEndpoint

    endpoint = McpEndpoint(app, services, settings.max_body_bytes)
    app.state.mcp = endpoint
    app.add_route(MCP_PATH, endpoint, methods=MCP_METHODS, include_in_schema=False)  # type: ignore[arg-type]
    return {MCP_PATH: endpoint.authenticate}


def _trust_proxies(app: FastAPI, settings: Settings) -> None:
    """Behind trusted reverse proxies, the client is the one their headers name.

    Outermost, so that every part of the app (login limits, audit evidence, the scheme of
    redirects) sees the original client's address and scheme. A request from any other
    peer keeps its own address whatever headers it sends.
    """
    trusted = trusted_proxy_list(settings.trusted_proxies)
    if trusted:
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=trusted)


class LockgateApp(FastAPI):
    """The application, with the delivery fast path (:mod:`lockgate.delivery.fastpath`)
    in front of the framework's own middleware stack."""

    fast_path: DeliveryFastPath | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fast = self.fast_path
        if fast is not None and await fast.handle(scope, receive, send):
            return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings, services: Services | None = None) -> FastAPI:
    services = services or build_services(settings)
    app = LockgateApp(
        lifespan=_lifespan(settings, services),  # type: ignore[arg-type]
        title="lockgate",
        version=__version__,
        description="Control plane for real-time governance of AI-generated software.",
        docs_url=None,  # served without a CDN by docs_page
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.services = services
    app.state.hub = DeliveryHub(services, heartbeat=settings.stream_heartbeat_seconds)
    app.state.metrics = Metrics(services, app.state.hub.stream_count)
    app.state.hub.on_propagated = app.state.metrics.propagation.observe
    app.state.stream_admission = StreamAdmission(
        settings.max_streams, settings.max_new_streams_per_second
    )
    app.state.sdk_key_cache = KeyCache()
    app.state.settings = settings
    app.state.context_limits = ContextLimits(work=settings.max_evaluation_work)
    app.state.session_auth = auth.session_auth
    app.state.login_limiter = LoginLimiter(
        settings.login_max_failures,
        settings.login_lockout_seconds,
        max_user_failures=settings.login_max_user_failures,
    )
    problems.install(app)
    own_credentials = _mount_mcp(app, settings, services)
    app.add_middleware(
        RequestLimits,
        max_body_bytes=settings.max_body_bytes,
        max_json_depth=settings.max_json_depth,
        body_timeout=float(settings.body_timeout_seconds),
        authenticate=CredentialGate(
            (route for router in ROUTERS for route in router.routes), own_credentials
        ),
    )
    app.add_middleware(RequestMetrics, metrics=app.state.metrics)
    # In front of everything: snapshot polls and streams of cached keys skip the
    # middleware, routing and dependencies (and, for streams, every send wrapper).
    app.fast_path = DeliveryFastPath(app.state)
    _trust_proxies(app, settings)
    for router in ROUTERS:
        app.include_router(router, responses=problems.PROBLEM_RESPONSES)
    _document(app)
    docs_page.install(app, "/openapi.json")
    dashboard.install(app)
    return app


def _document(app: FastAPI) -> None:
    """Build the OpenAPI document with what dependencies enforce but cannot declare."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = build()
            mark_if_match_required(document)
            if app.state.mcp is not None:
                from lockgate.api.mcp_http import MCP_PATH, openapi_path_item

                document["paths"][MCP_PATH] = openapi_path_item()
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
