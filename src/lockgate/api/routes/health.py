"""Liveness and readiness, without authentication."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import text

from lockgate import __version__
from lockgate.api.deps import ServicesDep
from lockgate.api.problems import problem_response
from lockgate.store import migrate

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
def healthz() -> dict[str, Any]:
    return {"status": "ok", "version": __version__}


@router.get(
    "/readyz", summary="The database is reachable and its schema current", response_model=None
)
def readyz(request: Request, services: ServicesDep) -> Any:
    hub = getattr(request.app.state, "hub", None)
    if hub is not None and hub.draining:
        return problem_response(503, "Not ready", "the server is shutting down", "not_ready")
    try:
        with services.view() as conn:
            conn.execute(text("SELECT 1"))
        current = migrate.is_current(services.database)
    except Exception as exc:  # any database failure means "not ready"
        return problem_response(
            503, "Not ready", f"database unreachable: {type(exc).__name__}", "not_ready"
        )
    if not current:
        return problem_response(
            503, "Not ready", "database schema is not current; run lockgate migrate", "not_ready"
        )
    return {
        "status": "ready",
        "database": "sqlite" if services.database.is_sqlite else "postgresql",
    }
