"""The dashboard's pages (GET): each reads through the same use-cases as the API.

Every page is for one project (``?project=KEY``; the first the viewer can see by default).
What a page offers depends on the viewer's role in each environment, read from the
use-cases, so a viewer sees no button that the use-case would refuse.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from lockgate.control import contract_yaml
from lockgate.control.configuration import contracts as contract_use
from lockgate.control.configuration import flags as flag_use
from lockgate.control.configuration import overview as overview_use
from lockgate.control.evidence import audit_query, report
from lockgate.control.governance import requests as request_use
from lockgate.control.governance import runtime as runtime_use
from lockgate.control.guardrails import definitions as guard_use
from lockgate.control.identity import members, sdk_keys, tokens, users
from lockgate.control.reversal import incidents as incident_use
from lockgate.dashboard import exports, versions
from lockgate.dashboard.render import page
from lockgate.dashboard.session import Viewer
from lockgate.dashboard.variation_view import variation_charts
from lockgate.dashboard.web import services_of, viewing
from lockgate.errors import FieldProblem, InvalidInput, LockgateError, NotFound, PermissionDenied
from lockgate.policy.access import Role

__all__ = ["access", "approvals", "audit", "behavior", "behavior_charts", "incidents", "overview"]

RANKS = {role.value: role.rank for role in Role}
RISK_TIERS = ("low", "medium", "high", "restricted")
DONE = {
    "killed": "Killed: everyone gets the fallback.",
    "restored": "Restored: the configuration underneath serves again.",
    "paused": "Staged rollout paused: nothing advances automatically.",
    "resumed": "Staged rollout resumed.",
    "saved": "Saved and applied.",
    "requested": "This change needs approval: a change request was opened.",
    "excluded": "Rolled back for that audience.",
    "lifted": "Rollback lifted.",
    "approved": "Approval recorded.",
    "rejected": "Rejected.",
    "commented": "Comment added.",
    "applied": "Change request applied.",
    "granted": "Runtime action approved.",
    "denied": "Runtime action denied.",
    "started": "Incident started: behaviors in scope fall back, expansions are frozen.",
    "ended": "Incident ended.",
    "revoked": "Revoked.",
    "granted_role": "Role granted.",
    "user_created": "User created: they can log in now.",
    "disabled": "User disabled: their sessions ended and their API tokens were revoked.",
    "enabled": "User enabled: they can log in again (with new API tokens).",
    "reverted": "Reverted: the earlier version serves again, as a new version.",
}


def at_least(role: str | None, wanted: Role) -> bool:
    return role is not None and RANKS.get(role, 0) >= wanted.rank


def _project(
    request: Request, viewer: Viewer, wanted: str | None
) -> tuple[str | None, list[dict[str, str]]]:
    projects = overview_use.visible_projects(services_of(request), viewer.caller)
    wanted = wanted or request.query_params.get("project")
    keys = [p["key"] for p in projects]
    if wanted and wanted not in keys:
        raise NotFound(f"project {wanted!r} not found")
    return wanted or (keys[0] if keys else None), projects


def _common(request: Request, viewer: Viewer, project: str | None = None) -> dict[str, Any]:
    # Read first: a change made while the page is built moves the head past it, and the
    # page's live regions fetch themselves again when the feed reports it.
    seq = audit_query.head_seq(services_of(request))
    project, projects = _project(request, viewer, project)
    done = DONE.get(request.query_params.get("done", ""))
    context: dict[str, Any] = {
        "project": project,
        "projects": projects,
        "notice": done,
        "at_least": at_least,
        "Role": Role,
        "banner": [],
        "audit_seq": seq,
    }
    if project is not None:
        context["banner"] = incident_use.list_incidents(
            services_of(request), viewer.caller, project, state="active"
        )["items"]
    return context


def _filters(request: Request) -> overview_use.Filters:
    q = request.query_params
    risk = q.get("risk") or None
    if risk is not None and risk not in RISK_TIERS:
        raise InvalidInput("bad filter", [FieldProblem("risk", f"one of {', '.join(RISK_TIERS)}")])
    for name in ("environment", "tag", "owner", "q"):
        if len(q.get(name, "")) > 200:
            raise InvalidInput("bad filter", [FieldProblem(name, "at most 200 characters")])
    return overview_use.Filters(
        environment=q.get("environment") or None,
        risk_tier=risk,
        tag=q.get("tag") or None,
        owner=q.get("owner") or None,
        text=q.get("q") or None,
    )


@viewing
def overview(request: Request, viewer: Viewer) -> Response:
    context = _common(request, viewer)
    project = context["project"]
    if project is None:
        return page(request, "empty.html", viewer, **context)
    filters = _filters(request)
    data = overview_use.overview(services_of(request), viewer.caller, project, filters)
    return page(request, "overview.html", viewer, data=data, filters=filters, **context)


@viewing
def behavior(request: Request, viewer: Viewer) -> Response:
    services = services_of(request)
    project = request.path_params["project"]
    key = request.path_params["flag"]
    context = _common(request, viewer, project)
    flag = flag_use.get_flag(services, viewer.caller, project, key)
    columns = overview_use.environment_columns(services, viewer.caller, project)
    history = {
        c.key: flag_use.flag_history(
            services, viewer.caller, project, key, c.key, versions.VERSIONS_SHOWN
        ).items
        for c in columns
    }
    activity = report.behavior_activity(services, viewer.caller, project, key)
    plans = {c.key: _plan(request, viewer, project, key, c.key) for c in columns}
    contract = _contract(request, viewer, project, key)
    timeline = audit_query.query_audit(
        services,
        viewer.caller,
        audit_query.AuditQuery(project=project, behavior=key, limit=25),
    )["items"]
    pending = request_use.list_requests(
        services, viewer.caller, project, state="open", limit=50
    ).items
    pending = [r for r in pending if r["object_key"] == key]
    charts = variation_charts(request, services, viewer, project, key, columns)
    return page(
        request,
        "behavior.html",
        viewer,
        flag=flag,
        columns=columns,
        history=history,
        version_audit=versions.audit_of_versions(services, viewer.caller, project, key, history),
        activity=activity,
        plans=plans,
        contract=contract,
        timeline=timeline,
        pending=pending,
        charts=charts,
        **context,
    )


@viewing
def behavior_charts(request: Request, viewer: Viewer) -> Response:
    """The Behavior page's charts section alone, for its live updates: the charts are
    read and drawn again without the rest of the page."""
    services = services_of(request)
    project = request.path_params["project"]
    key = request.path_params["flag"]
    flag = flag_use.get_flag(services, viewer.caller, project, key)
    columns = overview_use.environment_columns(services, viewer.caller, project)
    charts = variation_charts(request, services, viewer, project, key, columns)
    return page(
        request,
        "_variation_charts.html",
        viewer,
        flag=flag,
        columns=columns,
        project=project,
        charts=charts,
    )


def _plan(
    request: Request, viewer: Viewer, project: str, key: str, env: str
) -> dict[str, Any] | None:
    """The behavior's staged rollout plan in ``env``, if it has one."""
    try:
        return guard_use.get_plan(services_of(request), viewer.caller, project, key, env)
    except NotFound:
        return None


def _contract(request: Request, viewer: Viewer, project: str, key: str) -> dict[str, Any] | None:
    """The contract last applied to the behavior, with its explain view (line by line: what
    enforces it, and the lines nothing does)."""
    found = contract_use.contract_history(services_of(request), viewer.caller, project, key, 1)
    if not found.items:
        return None
    latest = found.items[0]
    try:
        explained = contract_yaml.explain_contract(latest["source"], latest["file"])
    except LockgateError:  # stored under older rules: show it without the explanation
        explained = None
    return {**latest, "explain": explained}


def _may_decide(viewer: Viewer, columns: list[Any], item: dict[str, Any]) -> bool:
    """Whether the viewer may approve or reject ``item`` (a change request)."""
    if item["author"] == viewer.name or item["state"] not in request_use.PENDING_STATES:
        return False
    roles = {c.key: c.role for c in columns}
    if item["environment"] is None:
        return any(at_least(r, Role.APPROVER) for r in roles.values())
    return at_least(roles.get(item["environment"]), Role.APPROVER)


@viewing
def approvals(request: Request, viewer: Viewer) -> Response:
    services = services_of(request)
    context = _common(request, viewer)
    project = context["project"]
    if project is None:
        return page(request, "empty.html", viewer, **context)
    columns = overview_use.environment_columns(services, viewer.caller, project)
    open_requests = [
        r
        for state in request_use.PENDING_STATES
        for r in request_use.list_requests(
            services, viewer.caller, project, state=state, limit=100
        ).items
    ]
    for item in open_requests:
        item["diff"] = request_use.request_diff(services, viewer.caller, item["id"])["fields"]
        item["may_decide"] = _may_decide(viewer, columns, item)
        item["may_apply"] = item["state"] == "approved" and (
            item["author"] == viewer.name or viewer.is_system_admin
        )
    decided = request_use.list_requests(services, viewer.caller, project, limit=20).items
    decided = [r for r in decided if r["state"] not in request_use.PENDING_STATES]
    runtime = runtime_use.list_approvals(
        services, viewer.caller, project, state="pending", limit=100
    ).items
    roles = {c.key: c.role for c in columns}
    for item in runtime:
        item["may_decide"] = at_least(roles.get(item["environment"]), Role.APPROVER) and (
            item["requested_by"] != viewer.name
        )
    return page(
        request,
        "approvals.html",
        viewer,
        requests=open_requests,
        decided=decided,
        runtime=runtime,
        now=services.now(),
        **context,
    )


@viewing
def audit(request: Request, viewer: Viewer) -> Response:
    services = services_of(request)
    context = _common(request, viewer)
    query = exports.audit_query_of(request, context["project"], 100)
    q = request.query_params
    wanted = {name: (q.get(name) or None) for name in exports.AUDIT_FILTERS}
    found = audit_query.query_audit(services, viewer.caller, query)
    verification = report.chain_verification(services) if q.get("verify") else None
    export = urlencode({k: v for k, v in wanted.items() if v})
    return page(
        request,
        "audit.html",
        viewer,
        entries=found["items"],
        next_cursor=found["next_cursor"],
        wanted=wanted,
        verification=verification,
        export_query=export,
        **context,
    )


@viewing
def incidents(request: Request, viewer: Viewer) -> Response:
    services = services_of(request)
    context = _common(request, viewer)
    project = context["project"]
    if project is None:
        return page(request, "empty.html", viewer, **context)
    columns = overview_use.environment_columns(services, viewer.caller, project)
    history = incident_use.list_incidents(services, viewer.caller, project)["items"]
    preview = None
    q = request.query_params
    if q.get("preview_environment"):
        scope = {
            "tags": [t.strip() for t in q.get("tags", "").split(",") if t.strip()],
            "min_risk": q.get("min_risk") or None,
            "owner": q.get("owner") or None,
        }
        preview = incident_use.start_incident(
            services,
            viewer.caller,
            project,
            q["preview_environment"],
            scope,
            "preview",
            dry_run=True,
        )
    return page(
        request,
        "incidents.html",
        viewer,
        columns=columns,
        history=history,
        preview=preview,
        form=dict(q),
        **context,
    )


def _members(request: Request, viewer: Viewer, project: str | None) -> list[dict[str, Any]]:
    """The project's members, when the viewer may list them (else none are shown)."""
    if project is None:
        return []
    try:
        return members.list_members(services_of(request), viewer.caller, project)
    except PermissionDenied:
        return []


@viewing
def access(request: Request, viewer: Viewer) -> Response:
    return access_page(request, viewer)


def access_page(
    request: Request,
    viewer: Viewer,
    project: str | None = None,
    *,
    status: int = 200,
    **extra: Any,
) -> Response:
    """The Access page of ``project``; ``extra``: a form sent back with its errors."""
    services = services_of(request)
    context = _common(request, viewer, project)
    project = context["project"]
    columns = overview_use.environment_columns(services, viewer.caller, project) if project else []
    keys = {
        c.key: sdk_keys.list_sdk_keys(services, viewer.caller, project, c.key)
        for c in columns
        if project and at_least(c.role, Role.ADMIN)
    }
    return page(
        request,
        "access.html",
        viewer,
        columns=columns,
        members=_members(request, viewer, project),
        project_role=overview_use.project_role(services, viewer.caller, project)
        if project
        else None,
        users=users.list_users(services, viewer.caller) if viewer.is_system_admin else [],
        tokens=tokens.list_tokens(services, viewer.caller),
        sdk_keys=keys,
        shown_once=None,
        status=status,
        **({"user_form": {}, "user_error": None} | extra),
        **context,
    )
