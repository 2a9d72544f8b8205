"""The release-control dashboard: server-rendered pages at ``/``, live over the audit feed.

A transport like :mod:`lockgate.api`: pages read and forms write through the same
``lockgate.control`` use-cases (policy, approvals, audit, streaming), with the same sessions.
See docs/dashboard.md and docs/adr/0013-dashboard.md.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.routing import Route
from starlette.staticfiles import StaticFiles

from lockgate.dashboard import actions, contracts, exports, pages, users, versions, web
from lockgate.dashboard.render import STATIC_DIR, compile_templates

__all__ = ["ASSETS_PATH", "ROUTES", "install"]

ASSETS_PATH = "/assets"
BEHAVIOR = "/behaviors/{project}/{flag}"

ROUTES = [
    Route("/", pages.overview, methods=["GET"], name="dashboard-overview"),
    Route("/login", web.login_page, methods=["GET"]),
    Route("/login", web.login, methods=["POST"]),
    Route("/logout", web.logout, methods=["POST"]),
    Route("/live", web.live, methods=["GET"]),
    Route(BEHAVIOR, pages.behavior, methods=["GET"]),
    Route(BEHAVIOR + "/charts", pages.behavior_charts, methods=["GET"]),
    Route(BEHAVIOR + "/kill", actions.kill, methods=["POST"]),
    Route(BEHAVIOR + "/restore", actions.restore, methods=["POST"]),
    Route(BEHAVIOR + "/rollout", actions.rollout, methods=["POST"]),
    Route(BEHAVIOR + "/configure", actions.configure, methods=["POST"]),
    Route(BEHAVIOR + "/exclude", actions.exclude, methods=["POST"]),
    Route(BEHAVIOR + "/lift", actions.lift, methods=["POST"]),
    Route(BEHAVIOR + "/plan/{verdict}", actions.plan, methods=["POST"]),
    Route(BEHAVIOR + "/revert", versions.revert, methods=["POST"]),
    Route("/approvals", pages.approvals, methods=["GET"]),
    Route("/approvals/{request}/{verdict}", actions.decide_request, methods=["POST"]),
    Route("/runtime-approvals/{request}/{verdict}", actions.decide_runtime, methods=["POST"]),
    Route("/audit", pages.audit, methods=["GET"]),
    Route("/audit/export", exports.audit_export_file, methods=["GET"]),
    Route("/contracts", contracts.contracts, methods=["GET"]),
    Route("/contracts/plan", contracts.plan, methods=["POST"]),
    Route("/contracts/apply", contracts.apply, methods=["POST"]),
    Route("/incidents", pages.incidents, methods=["GET"]),
    Route("/incidents/start", actions.start_incident, methods=["POST"]),
    Route("/incidents/{request}/end", actions.end_incident, methods=["POST"]),
    Route("/access", pages.access, methods=["GET"]),
    Route("/access/members", actions.grant_member, methods=["POST"]),
    Route("/access/members/revoke", actions.revoke_member, methods=["POST"]),
    Route("/access/tokens", actions.create_token, methods=["POST"]),
    Route("/access/tokens/revoke", actions.revoke_token, methods=["POST"]),
    Route("/access/sdk-keys", actions.create_sdk_key, methods=["POST"]),
    Route("/access/sdk-keys/revoke", actions.revoke_sdk_key, methods=["POST"]),
    Route("/access/users", users.create_user, methods=["POST"]),
    Route("/access/users/disabled", users.set_disabled, methods=["POST"]),
]
"""Every dashboard route (``tests/dashboard`` checks each one's access)."""


def install(app: FastAPI) -> None:
    """Serve the dashboard's pages and assets from ``app`` (after the API's routes)."""
    compile_templates()
    app.mount(ASSETS_PATH, StaticFiles(directory=STATIC_DIR), name="dashboard-assets")
    app.router.routes.extend(ROUTES)
