"""The Contracts page: paste (or load) a runtime contract, plan it, apply it.

Plan and apply are the use-cases of ``POST /api/v1/projects/{project}/contracts/plan`` and
``…/apply``: the plan lists each change with what the policy decides for it (applied at
once, a change request, refused) and whether it reduces or expands exposure; applying
goes through the governed change path and shows each step's outcome, with links to the
change requests it opened. A contract that does not load (YAML or schema) comes back on
the same page with each problem next to the text box, by line and field.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from lockgate.control.configuration import contracts as contract_use
from lockgate.control.configuration import overview as overview_use
from lockgate.dashboard.actions import _required
from lockgate.dashboard.pages import _common, at_least
from lockgate.dashboard.render import page
from lockgate.dashboard.session import Viewer
from lockgate.dashboard.web import acting, services_of, viewing
from lockgate.errors import FieldProblem, InvalidInput, LockgateError, NotFound, http_status
from lockgate.policy.access import Role

__all__ = ["apply", "contracts", "plan"]

MAX_SOURCE = 200_000
"""Characters a pasted contract may have (the form itself is limited to 256 KiB)."""


def _may_write(request: Request, viewer: Viewer, project: str) -> bool:
    """Plan and Apply are offered to editors of the project (a viewer sees neither)."""
    role = overview_use.project_role(services_of(request), viewer.caller, project)
    return viewer.is_system_admin or at_least(role, Role.EDITOR)


def _latest(request: Request, viewer: Viewer, project: str, key: str) -> dict[str, Any] | None:
    """The contract last applied to behavior ``key``, if any."""
    try:
        found = contract_use.contract_history(
            services_of(request), viewer.caller, project, key, 1
        ).items
    except NotFound:
        return None
    return found[0] if found else None


def _render(
    request: Request,
    viewer: Viewer,
    project: str | None,
    form: dict[str, str],
    *,
    status: int = 200,
    **more: Any,
) -> Response:
    context = _common(request, viewer, project)
    project = context["project"]
    if project is None:
        return page(request, "empty.html", viewer, **context)
    environments = overview_use.environment_columns(services_of(request), viewer.caller, project)
    values = {
        "plan": None,
        "result": None,
        "error": None,
        **more,
    }
    return page(
        request,
        "contracts.html",
        viewer,
        status=status,
        form=form,
        environments=environments,
        may_write=_may_write(request, viewer, project),
        **values,
        **context,
    )


@viewing
def contracts(request: Request, viewer: Viewer) -> Response:
    """``GET /contracts?project=P[&behavior=K]``: the form (with K's last contract in it)."""
    context = _common(request, viewer)
    project = context["project"]
    form = {"source": "", "file": "", "environment": "", "reason": ""}
    behavior = request.query_params.get("behavior")
    if project is not None and behavior:
        latest = _latest(request, viewer, project, behavior)
        if latest is not None:
            form |= {"source": latest["source"], "file": latest["file"] or ""}
    return _render(request, viewer, project, form)


def _source(form: dict[str, str]) -> str:
    source = form.get("source", "")
    if not source.strip():
        raise InvalidInput(
            "paste a contract first", [FieldProblem("source", "required: the contract's YAML")]
        )
    if len(source) > MAX_SOURCE:
        raise InvalidInput(
            "the contract is too long", [FieldProblem("source", f"at most {MAX_SOURCE} characters")]
        )
    return source


def _refused(
    request: Request, viewer: Viewer, project: str, form: dict[str, str], error: LockgateError
) -> Response:
    """The page again, with the form as sent and the problem next to its field."""
    problems = [p.to_dict() for p in getattr(error, "problems", [])]
    error_view = {"title": error.title, "detail": error.detail, "problems": problems}
    return _render(request, viewer, project, form, status=http_status(error), error=error_view)


@acting
def plan(request: Request, viewer: Viewer, form: dict[str, str]) -> Response:
    """What applying the contract would do, and what the policy decides for each change."""
    project = _required(form, "project")
    try:
        planned = contract_use.plan_contract(
            services_of(request),
            viewer.caller,
            project,
            _source(form),
            form.get("file", "").strip(),
            form.get("environment") or None,
            form.get("reason", ""),
        )
    except (InvalidInput, NotFound) as exc:
        return _refused(request, viewer, project, form, exc)
    return _render(request, viewer, project, form, plan=planned)


@acting
def apply(request: Request, viewer: Viewer, form: dict[str, str]) -> Response:
    """Apply the contract through the governed path; each step's outcome is shown."""
    project = _required(form, "project")
    try:
        result = contract_use.apply_contract(
            services_of(request),
            viewer.caller,
            project,
            _source(form),
            form.get("file", "").strip(),
            form.get("reason", ""),
        )
    except (InvalidInput, NotFound) as exc:
        return _refused(request, viewer, project, form, exc)
    return _render(request, viewer, project, form, result=result)
