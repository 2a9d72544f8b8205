"""The Access page's user forms (system administrators): create a user, disable or enable one.

A new user gets the password the administrator typed, or, left empty, a generated one shown
once (lockgate keeps only its hash); with a role, they are also made a member of the
project. Both go through the same use-cases as ``POST /api/v1/users`` and
``PUT /api/v1/projects/{project}/members/{user}``.
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from lockgate.control.identity import members
from lockgate.control.identity import users as user_use
from lockgate.control.identity.passwords import generate_password
from lockgate.dashboard import pages
from lockgate.dashboard.actions import _back, _integer, _required, _shown_once
from lockgate.dashboard.session import Viewer
from lockgate.dashboard.web import acting, services_of
from lockgate.errors import Conflict, FieldProblem, InvalidInput, http_status
from lockgate.policy.access import Role

__all__ = ["create_user", "set_disabled"]

ROLES = tuple(role.value for role in Role)


def _role(form: dict[str, str]) -> str | None:
    role = form.get("role", "").strip() or None
    if role is not None and role not in ROLES:
        raise InvalidInput("bad role", [FieldProblem("role", f"one of {', '.join(ROLES)}")])
    if role is not None and not form.get("project"):
        raise InvalidInput("a role needs a project", [FieldProblem("project", "required")])
    return role


@acting
def create_user(request: Request, viewer: Viewer, form: dict[str, str]) -> Response:
    """Create a human user; the password is shown once when it was generated.

    Bad input (or a name already taken) comes back on the Access page, the form as it was
    sent (but the password), each problem next to its field."""
    viewer.caller.require_system_admin()
    try:
        return _create_user(request, viewer, form)
    except (InvalidInput, Conflict) as exc:
        kept = {k: v for k, v in form.items() if k != "password"}
        problems = {p.field: p.message for p in getattr(exc, "problems", [])}
        if isinstance(exc, Conflict):
            problems["username"] = exc.detail
        error = {"detail": exc.detail, "problems": problems}
        project = form.get("project") or None
        return pages.access_page(
            request, viewer, project, status=http_status(exc), user_form=kept, user_error=error
        )


def _create_user(request: Request, viewer: Viewer, form: dict[str, str]) -> Response:
    username = _required(form, "username")
    role = _role(form)
    typed = form.get("password", "")
    password = typed or generate_password()
    services, reason = services_of(request), form.get("reason", "")
    project = form.get("project", "")
    if role is not None:  # checked first: no user is left without the role asked for
        members.list_members(services, viewer.caller, project)
    user_use.create_user(
        services,
        viewer.caller,
        username=username,
        display_name=form.get("display_name", "").strip(),
        password=password,
        reason=reason,
    )
    if role is not None:
        members.grant_role(services, viewer.caller, project, username, role, None, reason)
    if not typed:
        return _shown_once(request, viewer, f"User {username}: initial password", password)
    return _back(form, "user_created", f"/access?project={quote(project)}")


@acting
def set_disabled(request: Request, viewer: Viewer, form: dict[str, str]) -> Response:
    """Disable (ends their sessions, revokes their tokens) or enable a user."""
    wanted = _required(form, "disabled")
    if wanted not in ("true", "false"):
        raise InvalidInput("bad value", [FieldProblem("disabled", "true or false")])
    user_use.update_user(
        services_of(request),
        viewer.caller,
        _required(form, "username"),
        {"disabled": wanted == "true"},
        _integer(form, "version"),
        form.get("reason", ""),
    )
    return _back(form, "disabled" if wanted == "true" else "enabled", "/access")
