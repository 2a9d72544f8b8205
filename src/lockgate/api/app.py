"""The composition root: the one place that builds concrete classes and wires them."""

from __future__ import annotations

from fastapi import FastAPI

from lockgate import __version__
from lockgate.api import problems
from lockgate.api.limits import RequestLimits
from lockgate.api.routes import flags, health, projects
from lockgate.control.base import Services
from lockgate.settings import Settings
from lockgate.store import migrate
from lockgate.store.db import Database

__all__ = ["build_services", "create_app"]

ROUTERS = [health.router, projects.router, flags.router]


def build_services(settings: Settings, *, run_migrations: bool = True) -> Services:
    """Open the database (migrating it), load the audit signing key, build the services."""
    from lockgate.store import checkpoints

    database = Database(settings.effective_database_url)
    if run_migrations:
        migrate.upgrade(database)
    signer = checkpoints.Signer.load_or_create(checkpoints.signing_key_path(settings))
    return Services(
        database=database, signer=signer, checkpoint_every=settings.audit_checkpoint_every
    )


def create_app(settings: Settings, services: Services | None = None) -> FastAPI:
    services = services or build_services(settings)
    app = FastAPI(
        title="lockgate",
        version=__version__,
        description="Control plane for real-time governance of AI-generated software.",
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.services = services
    app.state.settings = settings
    problems.install(app)
    app.add_middleware(
        RequestLimits,
        max_body_bytes=settings.max_body_bytes,
        max_json_depth=settings.max_json_depth,
    )
    for router in ROUTERS:
        app.include_router(router)
    return app
