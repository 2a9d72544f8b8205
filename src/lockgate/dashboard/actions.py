"""The dashboard's forms (POST): each calls one use-case, exactly as the API route does.

Reductions (kill, rollback, incident start) apply at once; everything else goes through the
governed change path and may come back as a change request. Success redirects to the page
the form came from (POST, redirect, GET); a refusal renders the use-case's error.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from lockgate.control.configuration import flags as flag_use
from lockgate.control.governance import requests as request_use
from lockgate.control.governance import runtime as runtime_use
from lockgate.control.governance.gate import Deferred
from lockgate.control.guardrails import definitions as guard_use
from lockgate.control.identity import members, sdk_keys, tokens
from lockgate.control.reversal import incidents as incident_use
from lockgate.control.reversal import kill as kill_use
from lockgate.dashboard import present
from lockgate.dashboard.render import page, redirect
from lockgate.dashboard.session import Viewer
from lockgate.dashboard.web import acting, safe_next, services_of
from lockgate.errors import FieldProblem, InvalidInput, NotFound

__all__ = [
    "configure",
    "create_sdk_key",
    "create_token",
    "decide_request",
    "decide_runtime",
    "end_incident",
    "exclude",
    "grant_member",
    "kill",
    "lift",
    "plan",
    "restore",
    "revoke_member",
    "revoke_sdk_key",
    "revoke_token",
    "rollout",
    "start_incident",
]

EDITABLE = ("on", "off_variation", "targets", "rules", "default", "prerequisites", "bucket_by")
"""The configuration fields the JSON editor may change (kill and rollbacks have their own
forms; ``killed``, ``incidents`` and ``exclusions`` are reversal state)."""


def _required(form: dict[str, str], name: str) -> str:
    value = form.get(name, "").strip()
    if not value:
        raise InvalidInput(f"{name} is required", [FieldProblem(name, "required")])
    return value


def _integer(form: dict[str, str], name: str) -> int:
    text = _required(form, name)
    if not text.isdigit() or len(text) > 10:
        raise InvalidInput(f"bad {name}", [FieldProblem(name, "a whole number")])
    return int(text)


def _percent(form: dict[str, str]) -> float:
    text = _required(form, "percent")
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 100 or round(value * 1000) != value * 1000:
        raise InvalidInput(
            "bad percentage",
            [FieldProblem("percent", "a number from 0 to 100, at most 3 decimals")],
        )
    return value


def _back(form: dict[str, str], done: str, fallback: str = "/") -> Response:
    target = safe_next(form.get("back") or fallback)
    joiner = "&" if "?" in target else "?"
    return redirect(f"{target}{joiner}done={done}")


def _governed(form: dict[str, str], result: dict[str, Any] | Deferred, done: str) -> Response:
    return _back(form, "requested" if isinstance(result, Deferred) else done)


def _where(request: Request) -> tuple[str, str]:
    return request.path_params["project"], request.path_params["flag"]


# -- a behavior ---------------------------------------------------------------------------


@acting
def kill(request: Request, viewer: Viewer, form: dict[str, str]) -> Response:
    project, key = _where(request)
    env = _required(form, "environment")
    kill_use.kill(services_of(request), viewer.caller, project, key, [env], form.get("reason", ""))
    return _back(form, "killed")


@acting
def restore(request: Request, viewer: Viewer, form: dict[str, str]) -> Response:
    project, key = _where(request)
    result = kill_use.restore(
        services_of(request),
        viewer.caller,
        project,
        key,
        _required(form, "environment"),
        form.get("reason", ""),
        _integer(form, "version"),
    )
    return _governed(form, result, "restored")


@acting
def rollout(request: Request, viewer: Viewer, form: dict[str, str]) -> Response:
    project, key = _where(request)
    variation = _required(form, "variation")
    rest = _required(form, "rest")
    values = {"on": True, "default": present.split_for(variation, _percent(form), rest)}
    result = flag_use.update_flag_config(
        services_of(request),
        viewer.caller,
        project,
        key,
        _required(form, "environment"),
        values,
        _integer(form, "version"),
        form.get("reason", ""),
    )
    return _governed(form, result, "saved")


def _config_fields(text: str) -> dict[str, Any]:
    try:
        values = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            "the configuration is not JSON",
            [FieldProblem("config", f"line {exc.lineno}, column {exc.colno}: {exc.msg}")],
        ) from None
    if not isinstance(values, dict):
        raise InvalidInput("bad configuration", [FieldProblem("config", "a JSON object")])
    unknown = sorted(set(values) - set(EDITABLE))
    if unknown:
        raise InvalidInput(
            "bad configuration",
            [
                FieldProblem(f"config.{k}", f"not editable here; one of {', '.join(EDITABLE)}")
                for k in unknown
            ],
        )
    return values


@acting
def configure(request: Request, viewer: Viewer, form: dict[str, str]) -> Response:
    project, key = _where(request)
    result = flag_use.update_flag_config(
        services_of(request),
        viewer.caller,
        project,
        key,
        _required(form, "environment"),
        _config_fields(_required(form, "config")),
        _integer(form, "version"),
        form.get("reason", ""),
    )
    return _governed(form, result, "saved")


@acting
def exclude(request: Request, viewer: Viewer, form: dict[str, str]) -> Response:
    project, key = _where(request)
    kill_use.exclude(
        services_of(request),
        viewer.caller,
        project,
        key,
        _required(form, "environment"),
        _required(form, "audience"),
        form.get("reason", ""),
    )
    return _back(form, "excluded")


@acting
def lift(request: Request, viewer: Viewer, form: dict[str, str]) -> Response:
    project, key = _where(request)
    result = kill_use.lift_exclusion(
        services_of(request),
        viewer.caller,
        project,
        key,
        _required(form, "environment"),
        _required(form, "exclusion"),
        form.get("reason", ""),
    )
    return _governed(form, result, "lifted")


@acting
def plan(request: Request, viewer: Viewer, form: dict[str, str]) -> Response:
    """Pause (applied at once) or resume (governed) the staged rollout in one environment."""
    project, key = _where(request)
    env, reason = _required(form, "environment"), form.get("reason", "")
    services = services_of(request)
    if _verdict(request, ("pause", "resume")) == "pause":
        guard_use.pause_plan(services, viewer.caller, project, key, env, reason)
        return _back(form, "paused")
    result = guard_use.resume_plan(services, viewer.caller, project, key, env, reason)
    return _governed(form, result, "resumed")


# -- approvals ----------------------------------------------------------------------------


def _request_id(request: Request) -> int:
    text = request.path_params["request"]
    if not text.isdigit() or len(text) > 10:
        raise InvalidInput("bad id", [FieldProblem("id", "a whole number")])
    return int(text)


@acting
def decide_request(request: Request, viewer: Viewer, form: dict[str, str]) -> Response:
    services, rid = services_of(request), _request_id(request)
    verdict = _verdict(request, ("approve", "reject", "comment", "apply"))
    comment = form.get("comment", "")
    if verdict == "apply":
        request_use.apply_request(
            services, viewer.caller, rid, change_hash=form.get("change_hash") or None
        )
        return _back(form, "applied", "/approvals")
    if verdict == "approve":
        request_use.approve(
            services, viewer.caller, rid, comment=comment, change_hash=form.get("change_hash")
        )
        return _back(form, "approved", "/approvals")
    if verdict == "reject":
        request_use.reject(services, viewer.caller, rid, comment=comment)
        return _back(form, "rejected", "/approvals")
    request_use.comment(services, viewer.caller, rid, body=comment)
    return _back(form, "commented", "/approvals")


def _verdict(request: Request, allowed: tuple[str, ...]) -> str:
    verdict = str(request.path_params["verdict"])
    if verdict not in allowed:
        raise NotFound(f"no such decision {verdict!r}: one of {', '.join(allowed)}")
    return verdict


@acting
def decide_runtime(request: Request, viewer: Viewer, form: dict[str, str]) -> Response:
    services, rid = services_of(request), _request_id(request)
    comment = form.get("comment", "")
    if _verdict(request, ("approve", "deny")) == "approve":
        runtime_use.approve(services, viewer.caller, rid, comment=comment)
        done = "granted"
    else:
        runtime_use.deny(services, viewer.caller, rid, comment=comment)
        done = "denied"
    request.app.state.hub.approvals.notify(rid)  # wake the SDK waiting on it
    return _back(form, done, "/approvals")


# -- incidents ----------------------------------------------------------------------------


@acting
def start_incident(request: Request, viewer: Viewer, form: dict[str, str]) -> Response:
    project = _required(form, "project")
    scope = {
        "tags": [t.strip() for t in form.get("tags", "").split(",") if t.strip()],
        "min_risk": form.get("min_risk") or None,
        "owner": form.get("owner") or None,
    }
    incident_use.start_incident(
        services_of(request),
        viewer.caller,
        project,
        _required(form, "environment"),
        scope,
        form.get("reason", ""),
    )
    return _back(form, "started", f"/incidents?project={quote(project)}")


@acting
def end_incident(request: Request, viewer: Viewer, form: dict[str, str]) -> Response:
    project = _required(form, "project")
    incident_use.end_incident(
        services_of(request),
        viewer.caller,
        project,
        _request_id(request),
        form.get("reason", ""),
    )
    return _back(form, "ended", f"/incidents?project={quote(project)}")


# -- access -------------------------------------------------------------------------------


def _shown_once(request: Request, viewer: Viewer, what: str, secret: str) -> Response:
    return page(request, "secret.html", viewer, what=what, secret=secret, banner=[], projects=[])


@acting
def grant_member(request: Request, viewer: Viewer, form: dict[str, str]) -> Response:
    project = _required(form, "project")
    members.grant_role(
        services_of(request),
        viewer.caller,
        project,
        _required(form, "username"),
        _required(form, "role"),
        form.get("environment") or None,
        form.get("reason", ""),
    )
    return _back(form, "granted_role", f"/access?project={quote(project)}")


@acting
def revoke_member(request: Request, viewer: Viewer, form: dict[str, str]) -> Response:
    project = _required(form, "project")
    members.revoke_member(
        services_of(request),
        viewer.caller,
        project,
        _required(form, "username"),
        form.get("environment") or None,
        form.get("reason", ""),
    )
    return _back(form, "revoked", f"/access?project={quote(project)}")


@acting
def create_token(request: Request, viewer: Viewer, form: dict[str, str]) -> Response:
    days = form.get("expires_in_days", "").strip()
    created = tokens.create_token(
        services_of(request),
        viewer.caller,
        name=_required(form, "name"),
        project=form.get("project") or None,
        max_role=form.get("max_role") or None,
        expires_in_days=_integer(form, "expires_in_days") if days else None,
        reason=form.get("reason", ""),
    )
    return _shown_once(request, viewer, f"API token {created['name']}", created["token"])


@acting
def revoke_token(request: Request, viewer: Viewer, form: dict[str, str]) -> Response:
    tokens.revoke_token(
        services_of(request), viewer.caller, _required(form, "prefix"), form.get("reason", "")
    )
    return _back(form, "revoked", "/access")


@acting
def create_sdk_key(request: Request, viewer: Viewer, form: dict[str, str]) -> Response:
    project, env = _required(form, "project"), _required(form, "environment")
    created = sdk_keys.create_sdk_key(
        services_of(request),
        viewer.caller,
        project,
        env,
        kind=_required(form, "kind"),
        name=form.get("name", ""),
        reason=form.get("reason", ""),
    )
    return _shown_once(request, viewer, f"{created['kind']} SDK key for {env}", created["key"])


@acting
def revoke_sdk_key(request: Request, viewer: Viewer, form: dict[str, str]) -> Response:
    sdk_keys.revoke_sdk_key(
        services_of(request),
        viewer.caller,
        _required(form, "project"),
        _required(form, "environment"),
        _required(form, "prefix"),
        reason=form.get("reason", ""),
    )
    return _back(form, "revoked", "/access")
