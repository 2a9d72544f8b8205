"""The authorization matrix: every route of the app, called by every kind of principal.

HOW TO ADD A ROUTE (the test fails until you do)
------------------------------------------------
Every route of the app must appear in ``ACCESS`` below, keyed by ``(METHOD, path
template)`` exactly as FastAPI declares it. Its value lists one or more ``Case``\\ s: the
*rule* that decides who may call it, plus how to call it (path parameters, a body, an
``If-Match`` taken from a GET, a ``prepare`` step that creates the object to act on).
Rules:

``Project(Action.X)``
    needs ``Action.X`` on the project in the path (project ``alpha``). Principals who
    cannot see the project get 404, those who can but lack the role 403.
``Project(Action.X)`` with ``Action.X.per_environment``
    the same, decided per environment; the case runs in ``staging`` and ``production``.
``ANY_USER``
    any authenticated user or API token (the answer is limited to what they may see).
``SYSTEM_ADMIN``
    system administrators only (an un-narrowed admin); everyone else 403.
``ADMIN_OR_HIDDEN``
    system administrators, or the object's owner; everyone else 404.
``DELIVERY``
    SDK keys (server keys in this matrix); API tokens and no credentials get 401.
``SECRET_URL``
    the secret in the path is the credential (alert triggers' hooks): everyone who has the
    URL may call it, whatever else they send (a wrong secret is tested in
    tests/api/test_alert_triggers_api.py).

Everything except ``DELIVERY`` and ``SECRET_URL`` refuses SDK keys and missing credentials with 401.
Skipped: health probes, the OpenAPI document and docs, ``POST /api/v1/auth/login``, and the
dashboard's pages (sessions only; tests/dashboard/test_access.py checks them).
Principals (see ``_world``): system admin; alpha admin, editor and viewer; an editor in
alpha/staging only (a viewer elsewhere in alpha); a token narrowed to project beta (its
user is an alpha admin); a token with ``max_role`` viewer (its user is an alpha admin);
a server SDK key of alpha/staging; no credentials. The matrix runs on SQLite only.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from lockgate.api.app import build_services, create_app
from lockgate.control.identity.bootstrap import ensure_admin
from lockgate.policy.access import Action, Role
from lockgate.settings import Settings
from tests.api.identity_helpers import PASSWORD, bearer, use_cheap_hashing

OK = "2xx"
SKIPPED_PATHS = ("/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/redoc", "/mcp")
"""Not API routes; ``/mcp`` (automation tokens only) is checked in tests/api/test_mcp_http.py."""
SKIPPED_ROUTES = {("POST", "/api/v1/auth/login")}
ENVIRONMENTS = ("staging", "production")
SELF = "<self>"  # a path parameter replaced by the calling principal's username


# --- rules --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Project:
    action: Action


@dataclass(frozen=True)
class Special:
    name: str


ANY_USER = Special("any user")
SYSTEM_ADMIN = Special("system admin")
ADMIN_OR_HIDDEN = Special("admin or owner, else 404")
DELIVERY = Special("SDK key")
SECRET_URL = Special("the secret in the path")
Rule = Project | Special


# --- principals ---------------------------------------------------------------------------


@dataclass
class Principal:
    name: str
    headers: dict[str, str] = field(default_factory=dict)
    username: str | None = None
    password: str = PASSWORD
    kind: str = "user"  # user | sdk | none
    system_admin: bool = False
    # Effective role in project alpha: for the project (None) and per environment;
    # None: alpha is hidden from this principal.
    alpha: dict[str | None, Role] | None = None


def _roles(
    project: Role, staging: Role | None = None, production: Role | None = None
) -> dict[str | None, Role]:
    return {None: project, "staging": staging or project, "production": production or project}


PRINCIPALS = (
    "system-admin",
    "alpha-admin",
    "alpha-editor",
    "alpha-viewer",
    "staging-editor",
    "beta-token",
    "viewer-token",
    "sdk-server-key",
    "anonymous",
)


@dataclass
class World:
    http: TestClient
    admin: dict[str, str]
    principals: dict[str, Principal]
    counter: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    proposer: dict[str, str] = field(default_factory=dict)  # an alpha editor's token headers

    def unique(self, stem: str) -> str:
        return f"{stem}{next(self.counter)}"

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.http.request(method, path, headers=self.admin, **kwargs)

    def etag(self, path: str) -> str:
        r = self.call("GET", path)
        assert r.status_code == 200, (path, r.text)
        return str(r.headers["ETag"])


# --- how to call routes -------------------------------------------------------------------

Body = Callable[[World, Principal], Any]
Prepare = Callable[[World, Principal, dict[str, str]], dict[str, str]]


@dataclass(frozen=True)
class Case:
    rule: Rule
    params: dict[str, str] = field(default_factory=dict)
    body: Body | None = None
    query: dict[str, str] = field(default_factory=dict)
    if_match: str | None = None  # GET this path (same parameters) for the ETag
    prepare: Prepare | None = None
    streams: bool = False  # never returns when allowed: only refusals are checked


DEFAULT_PARAMS = {
    "project": "alpha",
    "environment": "staging",
    "flag": "checkout",
    "segment": "vip",
    "username": "ed",
    "key": "checkout",
}
FLAG = "/api/v1/projects/{project}/flags/{flag}"
CONFIG = FLAG + "/environments/{environment}"
SDK_KEYS = "/api/v1/projects/{project}/environments/{environment}/sdk-keys"
DECISIONS = "/api/v1/projects/{project}/environments/{environment}/decisions"


def _fresh_segment(world: World, _p: Principal, params: dict[str, str]) -> dict[str, str]:
    key = world.unique("gone")
    r = world.call("POST", "/api/v1/projects/alpha/segments", json={"key": key})
    assert r.status_code == 201, r.text
    return {"segment": key}


def _fresh_tool(world: World, _p: Principal, params: dict[str, str]) -> dict[str, str]:
    """A registered tool: proposed by an editor (a high-risk behavior makes it a change
    request), approved and applied by the admin."""
    key = world.unique("tool")
    body = {"key": key, "risk": "read", "reason": "m"}
    r = world.http.post("/api/v1/projects/alpha/tools", json=body, headers=world.proposer)
    if r.status_code == 202:
        request_id = r.json()["id"]
        r = world.call("POST", f"/api/v1/change-requests/{request_id}/approve", json={})
        assert r.status_code == 200, r.text
        r = world.call("POST", f"/api/v1/change-requests/{request_id}/apply", json={})
        assert r.status_code == 200, r.text
    else:
        assert r.status_code == 201, r.text
    return {"tool": key}


def _member_to_remove(world: World, _p: Principal, params: dict[str, str]) -> dict[str, str]:
    r = world.call("PUT", "/api/v1/projects/alpha/members/tess", json={"role": "viewer"})
    assert r.status_code == 200, r.text
    return {"username": "tess"}


def _own_token(world: World, p: Principal, params: dict[str, str]) -> dict[str, str]:
    headers = p.headers if p.kind == "user" else world.admin
    r = world.http.post("/api/v1/tokens", json={"name": "to revoke"}, headers=headers)
    assert r.status_code == 201, r.text
    return {"prefix": r.json()["prefix"]}


def _someone_elses_token(world: World, _p: Principal, params: dict[str, str]) -> dict[str, str]:
    r = world.call("POST", "/api/v1/tokens", json={"name": "tess's", "user": "tess"})
    assert r.status_code == 201, r.text
    return {"prefix": r.json()["prefix"]}


def _clear_client_keys(world: World, env: str) -> None:
    listed = world.call("GET", SDK_KEYS.format(project="alpha", environment=env)).json()
    for key in listed["items"]:
        if key["kind"] == "client" and not key["revoked"]:
            path = SDK_KEYS.format(project="alpha", environment=env) + f"/{key['prefix']}"
            world.call("DELETE", path)


def _room_for_a_key(world: World, _p: Principal, params: dict[str, str]) -> dict[str, str]:
    _clear_client_keys(world, params["environment"])
    return {}


def _key_to_revoke(world: World, _p: Principal, params: dict[str, str]) -> dict[str, str]:
    env = params["environment"]
    _clear_client_keys(world, env)
    path = SDK_KEYS.format(project="alpha", environment=env)
    r = world.call("POST", path, json={"kind": "client"})
    assert r.status_code == 201, r.text
    return {"prefix": r.json()["prefix"]}


def _change_request(*, approved: bool) -> Prepare:
    """A fresh change request in the case's environment: a new high-risk flag turned on."""

    def prepare(world: World, _p: Principal, params: dict[str, str]) -> dict[str, str]:
        key = world.unique("cr")
        body = {"key": key, "kind": "boolean", "risk_tier": "high", "reason": "matrix"}
        assert world.call("POST", "/api/v1/projects/alpha/flags", json=body).status_code == 201
        path = CONFIG.format(project="alpha", flag=key, environment=params["environment"])
        headers = {**world.proposer, "If-Match": world.etag(path)}
        change = {"on": True, "default": {"variation": "on"}, "reason": "matrix"}
        r = world.http.patch(path, json=change, headers=headers)
        assert r.status_code == 202, r.text
        request_id = str(r.json()["id"])
        if approved:
            r = world.call("POST", f"/api/v1/change-requests/{request_id}/approve", json={})
            assert r.json()["state"] == "approved", r.text
        return {"request_id": request_id}

    return prepare


TRIGGERS = "/api/v1/projects/{project}/environments/{environment}/alert-triggers"


def _alert_trigger(world: World, _p: Principal, params: dict[str, str]) -> dict[str, str]:
    path = TRIGGERS.format(project="alpha", environment=params["environment"])
    r = world.call("POST", path, json={"flag": "checkout", "action": "kill"})
    assert r.status_code == 201, r.text
    return {"trigger_id": r.json()["id"], "secret": r.json()["secret"]}


CR = "/api/v1/change-requests/{request_id}"
INCIDENTS = "/api/v1/projects/{project}/incidents"
THIS_ENV = "<the case's environment>"  # in a body: replaced by the environment the case runs in
NO_SCOPE = {"tags": ["matrix-covers-nothing"]}  # incidents that freeze no other case


def _killed(world: World, _p: Principal, params: dict[str, str]) -> dict[str, str]:
    body = {"environments": [params["environment"]], "reason": "matrix"}
    r = world.call("POST", FLAG.format(**params) + "/kill", json=body)
    assert r.status_code == 200, r.text
    return {}


def _fresh_flag(world: World, _p: Principal, params: dict[str, str]) -> dict[str, str]:
    key = world.unique("old")
    r = world.call("POST", "/api/v1/projects/alpha/flags", json={"key": key, "kind": "boolean"})
    assert r.status_code == 201, r.text
    return {"flag": key}


def _archived_flag(world: World, p: Principal, params: dict[str, str]) -> dict[str, str]:
    made = _fresh_flag(world, p, params)
    path = FLAG.format(project="alpha", flag=made["flag"]) + "/lifecycle/archive"
    r = world.call("POST", path, json={"reason": "matrix"})
    assert r.status_code == 200, r.text
    return made


CODE_REFS = {"repository": "acme/app", "branch": "main", "files_scanned": 1, "references": []}


def _exclusion(world: World, _p: Principal, params: dict[str, str]) -> dict[str, str]:
    ident = world.unique("x")
    body = {"audience": f"region:{ident}", "id": ident, "reason": "matrix"}
    r = world.call("POST", CONFIG.format(**params) + "/exclusions", json=body)
    assert r.status_code == 201, r.text
    return {"exclusion": ident}


def _incident(world: World, _p: Principal, params: dict[str, str]) -> dict[str, str]:
    body = {"environment": params["environment"], "reason": "matrix", **NO_SCOPE}
    r = world.call("POST", INCIDENTS.format(**params), json=body)
    assert r.status_code == 201, r.text
    return {"incident": str(r.json()["id"])}


def _guardrail(world: World, _p: Principal, params: dict[str, str]) -> dict[str, str]:
    key = world.unique("g")
    body = {"metric": "error", "action": "notify", "reason": "matrix"}
    r = world.call("PUT", CONFIG.format(**params) + f"/guardrails/{key}", json=body)
    assert r.status_code in (200, 202), r.text
    return {"key": key}


def _new_guardrail_key(world: World, _p: Principal, params: dict[str, str]) -> dict[str, str]:
    return {"key": world.unique("g")}


def _rollout(world: World, _p: Principal, params: dict[str, str]) -> dict[str, str]:
    body = {"variation": "on", "stages": [{"name": world.unique("s"), "percent": 5}],
            "reason": "matrix"}  # fmt: skip
    r = world.call("PUT", CONFIG.format(**params) + "/rollout", json=body)
    assert r.status_code == 200, r.text
    return {}


def _in_this_env(body: Any, env: str) -> Any:
    """``body`` with :data:`THIS_ENV` replaced by ``env`` (in values and lists of values)."""
    if not isinstance(body, dict):
        return body

    def fill(value: Any) -> Any:
        return env if value == THIS_ENV else value

    return {k: [fill(x) for x in v] if isinstance(v, list) else fill(v) for k, v in body.items()}


RA = "/api/v1/runtime-approvals/{approval_id}"
_SERVER_KEYS: dict[tuple[int, str], dict[str, str]] = {}


def _runtime_approval(world: World, _p: Principal, params: dict[str, str]) -> dict[str, str]:
    """A fresh pending runtime approval in the case's environment, asked by a server key."""
    env = params["environment"]
    headers = _SERVER_KEYS.get((id(world), env))
    if headers is None:
        path = SDK_KEYS.format(project="alpha", environment=env)
        r = world.call("POST", path, json={"kind": "server", "name": "matrix approvals"})
        assert r.status_code == 201, r.text
        headers = _SERVER_KEYS[(id(world), env)] = bearer(r.json()["key"])
    r = world.http.post("/sdk/v1/approvals", json=ASK_APPROVAL, headers=headers)
    assert r.status_code == 201, r.text
    return {"approval_id": str(r.json()["id"])}


def _password(world: World, p: Principal) -> dict[str, str]:
    return {"current_password": p.password, "new_password": p.password}


WEBHOOKS = "/api/v1/projects/{project}/webhooks"
HOOK: dict[str, Any] = {
    "url": "https://93.184.215.14/hooks",
    "event_types": ["cleanup.due"],
}  # never sent here


def _webhook(world: World, _p: Principal, params: dict[str, str]) -> dict[str, str]:
    key = world.unique("hook")
    r = world.call("POST", WEBHOOKS.format(**params), json={"key": key, **HOOK})
    assert r.status_code == 201, r.text
    return {"webhook": key}


def _failed_delivery(world: World, p: Principal, params: dict[str, str]) -> dict[str, str]:
    """A webhook with one failed delivery (written straight into the outbox)."""
    from sqlalchemy import insert, select

    from lockgate.store.tables import webhook_deliveries, webhook_subscriptions

    made = _webhook(world, p, params)
    services = world.http.app.state.services  # type: ignore[attr-defined]
    with services.database.write() as conn:
        subscription = conn.execute(
            select(webhook_subscriptions.c.id).where(webhook_subscriptions.c.key == made["webhook"])
        ).scalar_one()
        row = conn.execute(
            insert(webhook_deliveries).values(
                subscription_id=subscription,
                event_id="evt_matrix",
                event_type="cleanup.due",
                data={},
                created_at="2026-12-05T00:00:00.000000Z",
                state="failed",
                attempts=10,
                next_attempt_at="2026-12-05T00:00:00.000000Z",
                last_error="matrix",
            )
        )
    return made | {"delivery": str(row.inserted_primary_key[0])}


def _unique(stem: str, field_name: str = "key", **more: Any) -> Body:
    return lambda world, _p: {field_name: world.unique(stem), **more}


def _contract(world: World, _p: Principal) -> dict[str, str]:
    """A contract for a new behavior (no environments): plan reads, apply creates it."""
    key = world.unique("contract")
    source = (
        "ai_generated_software_control:\n"
        f"  behavior: matrix\n  key: {key}\n  owner: team\n  risk_level: low\n"
        "  allowed_modes: [off, observe]\n"
    )
    return {"source": source, "file": "matrix.yaml"}


CONTEXT = {"context": {"key": "user-1", "targetingKey": "user-1"}}
OFREP_CONTEXT = {"context": {"targetingKey": "user-1"}}
ASK_APPROVAL = {"behavior": "checkout", "action": "refund", "summary": "matrix", "context": {}}

ACCESS: dict[tuple[str, str], list[Case]] = {
    # projects and environments
    ("GET", "/api/v1/projects"): [Case(ANY_USER)],
    ("POST", "/api/v1/projects"): [Case(SYSTEM_ADMIN, body=_unique("p"))],
    ("GET", "/api/v1/projects/{project}"): [Case(Project(Action.READ))],
    ("PATCH", "/api/v1/projects/{project}"): [
        Case(
            Project(Action.ADMIN_PROJECT),
            body=_unique("d", "description"),
            if_match="/api/v1/projects/{project}",
        )
    ],
    ("GET", "/api/v1/projects/{project}/environments"): [Case(Project(Action.READ))],
    ("POST", "/api/v1/projects/{project}/environments"): [
        Case(Project(Action.ADMIN_PROJECT), body=_unique("env"))
    ],
    ("GET", "/api/v1/projects/{project}/environments/{environment}"): [Case(Project(Action.READ))],
    ("PATCH", "/api/v1/projects/{project}/environments/{environment}"): [
        Case(
            Project(Action.ADMIN_PROJECT),
            body=_unique("Env ", "name"),
            if_match="/api/v1/projects/{project}/environments/{environment}",
        )
    ],
    # flags
    ("GET", "/api/v1/projects/{project}/flags"): [Case(Project(Action.READ))],
    ("POST", "/api/v1/projects/{project}/flags"): [
        Case(Project(Action.WRITE_PROJECT_OBJECT), body=_unique("f", kind="boolean"))
    ],
    ("GET", FLAG): [Case(Project(Action.READ))],
    ("PATCH", FLAG): [
        Case(
            Project(Action.WRITE_PROJECT_OBJECT),
            body=_unique("d", "description"),
            if_match=FLAG,
        )
    ],
    ("GET", CONFIG): [Case(Project(Action.READ))],
    ("PATCH", CONFIG): [
        Case(
            Project(Action.WRITE_ENVIRONMENT_CONFIG),
            body=lambda w, p: {"on": True, "reason": "matrix"},
            if_match=CONFIG,
        )
    ],
    ("GET", CONFIG + "/versions"): [Case(Project(Action.READ))],
    ("POST", CONFIG + "/revert"): [
        Case(
            Project(Action.WRITE_ENVIRONMENT_CONFIG),
            body=lambda w, p: {"to_version": 1, "reason": "matrix"},
            if_match=CONFIG,
        )
    ],
    # cleanup
    ("GET", FLAG + "/lifecycle"): [Case(Project(Action.READ))],
    ("POST", FLAG + "/lifecycle/archive"): [
        Case(
            Project(Action.WRITE_PROJECT_OBJECT),
            prepare=_fresh_flag,
            body=lambda w, p: {"reason": "matrix"},
        )
    ],
    ("POST", FLAG + "/lifecycle/restore"): [
        Case(
            Project(Action.WRITE_PROJECT_OBJECT),
            prepare=_archived_flag,
            body=lambda w, p: {"reason": "matrix"},
        )
    ],
    ("GET", "/api/v1/projects/{project}/cleanup-report"): [Case(Project(Action.READ))],
    ("GET", "/api/v1/projects/{project}/code-refs"): [Case(Project(Action.READ))],
    ("POST", "/api/v1/projects/{project}/code-refs"): [
        Case(Project(Action.WRITE_PROJECT_OBJECT), body=lambda w, p: dict(CODE_REFS))
    ],
    # reversal
    ("POST", FLAG + "/kill"): [
        Case(
            Project(Action.WRITE_ENVIRONMENT_CONFIG),
            body=lambda w, p: {"environments": [THIS_ENV], "reason": "matrix"},
        )
    ],
    ("POST", CONFIG + "/restore"): [
        Case(
            Project(Action.WRITE_ENVIRONMENT_CONFIG),
            prepare=_killed,
            body=lambda w, p: {"reason": "matrix"},
            if_match=CONFIG,
        )
    ],
    ("GET", CONFIG + "/exclusions"): [Case(Project(Action.READ_ENVIRONMENT))],
    ("POST", CONFIG + "/exclusions"): [
        Case(
            Project(Action.WRITE_ENVIRONMENT_CONFIG),
            body=lambda w, p: {"audience": f"region:{w.unique('r')}", "reason": "matrix"},
        )
    ],
    ("POST", CONFIG + "/exclusions/{exclusion}/lift"): [
        Case(
            Project(Action.WRITE_ENVIRONMENT_CONFIG),
            prepare=_exclusion,
            body=lambda w, p: {"reason": "matrix"},
        )
    ],
    # guardrails and staged rollouts
    ("GET", CONFIG + "/guardrails"): [Case(Project(Action.READ_ENVIRONMENT))],
    ("GET", CONFIG + "/guardrails/{key}"): [
        Case(Project(Action.READ_ENVIRONMENT), prepare=_guardrail)
    ],
    ("PUT", CONFIG + "/guardrails/{key}"): [
        Case(
            Project(Action.WRITE_ENVIRONMENT_CONFIG),
            prepare=_new_guardrail_key,
            body=lambda w, p: {"metric": "error", "reason": "matrix"},
        )
    ],
    ("DELETE", CONFIG + "/guardrails/{key}"): [
        Case(
            Project(Action.WRITE_ENVIRONMENT_CONFIG),
            prepare=_guardrail,
            query={"reason": "matrix"},
        )
    ],
    ("GET", CONFIG + "/rollout"): [Case(Project(Action.READ_ENVIRONMENT), prepare=_rollout)],
    ("PUT", CONFIG + "/rollout"): [
        Case(
            Project(Action.WRITE_ENVIRONMENT_CONFIG),
            body=lambda w, p: {
                "variation": "on",
                "stages": [{"name": w.unique("s"), "percent": 5}],
                "reason": "matrix",
            },
        )
    ],
    ("DELETE", CONFIG + "/rollout"): [
        Case(Project(Action.WRITE_ENVIRONMENT_CONFIG), prepare=_rollout, query={"reason": "matrix"})
    ],
    ("POST", CONFIG + "/rollout/pause"): [
        Case(
            Project(Action.WRITE_ENVIRONMENT_CONFIG),
            prepare=_rollout,
            body=lambda w, p: {"reason": "matrix"},
        )
    ],
    ("POST", CONFIG + "/rollout/resume"): [
        Case(
            Project(Action.WRITE_ENVIRONMENT_CONFIG),
            prepare=_rollout,
            body=lambda w, p: {"reason": "matrix"},
        )
    ],
    ("POST", CONFIG + "/rollout/advance"): [
        Case(
            Project(Action.WRITE_ENVIRONMENT_CONFIG),
            prepare=_rollout,
            body=lambda w, p: {"reason": "matrix"},
        )
    ],
    ("GET", INCIDENTS): [Case(Project(Action.READ))],
    ("POST", INCIDENTS): [
        Case(
            Project(Action.WRITE_ENVIRONMENT_CONFIG),
            body=lambda w, p: {"environment": THIS_ENV, "reason": "matrix", **NO_SCOPE},
        )
    ],
    ("GET", INCIDENTS + "/{incident}"): [Case(Project(Action.READ), prepare=_incident)],
    ("POST", INCIDENTS + "/{incident}/end"): [
        Case(Project(Action.APPROVE), prepare=_incident, body=lambda w, p: {"reason": "matrix"})
    ],
    # runtime contracts
    ("GET", "/api/v1/contracts/schema"): [Case(ANY_USER)],
    ("POST", "/api/v1/contracts/validate"): [Case(ANY_USER, body=_contract)],
    ("POST", "/api/v1/contracts/explain"): [Case(ANY_USER, body=_contract)],
    ("POST", "/api/v1/projects/{project}/contracts/plan"): [
        Case(Project(Action.READ), body=_contract)
    ],
    ("POST", "/api/v1/projects/{project}/contracts/apply"): [
        Case(Project(Action.WRITE_PROJECT_OBJECT), body=_contract)
    ],
    ("GET", FLAG + "/contract"): [Case(Project(Action.READ))],
    ("GET", FLAG + "/evidence"): [Case(Project(Action.READ))],
    ("GET", FLAG + "/release-notes"): [Case(Project(Action.READ))],
    ("GET", FLAG + "/contract/versions"): [Case(Project(Action.READ))],
    # webhooks
    ("GET", WEBHOOKS): [Case(Project(Action.ADMIN_PROJECT))],
    ("POST", WEBHOOKS): [Case(Project(Action.ADMIN_PROJECT), body=_unique("hook", **HOOK))],
    ("GET", WEBHOOKS + "/{webhook}"): [Case(Project(Action.ADMIN_PROJECT), prepare=_webhook)],
    ("PATCH", WEBHOOKS + "/{webhook}"): [
        Case(
            Project(Action.ADMIN_PROJECT),
            prepare=_webhook,
            body=_unique("d", "description"),
            if_match=WEBHOOKS + "/{webhook}",
        )
    ],
    ("DELETE", WEBHOOKS + "/{webhook}"): [
        Case(Project(Action.ADMIN_PROJECT), prepare=_webhook, if_match=WEBHOOKS + "/{webhook}")
    ],
    ("POST", WEBHOOKS + "/{webhook}/rotate-secret"): [
        Case(Project(Action.ADMIN_PROJECT), prepare=_webhook, body=lambda w, p: {})
    ],
    ("GET", WEBHOOKS + "/{webhook}/deliveries"): [
        Case(Project(Action.ADMIN_PROJECT), prepare=_webhook)
    ],
    ("POST", WEBHOOKS + "/{webhook}/deliveries/{delivery}/replay"): [
        Case(Project(Action.ADMIN_PROJECT), prepare=_failed_delivery, body=lambda w, p: {})
    ],
    ("POST", WEBHOOKS + "/{webhook}/replay-failed"): [
        Case(Project(Action.ADMIN_PROJECT), prepare=_failed_delivery, body=lambda w, p: {})
    ],
    # segments
    ("GET", "/api/v1/projects/{project}/segments"): [Case(Project(Action.READ))],
    ("POST", "/api/v1/projects/{project}/segments"): [
        Case(Project(Action.WRITE_PROJECT_OBJECT), body=_unique("s"))
    ],
    ("GET", "/api/v1/projects/{project}/segments/{segment}"): [Case(Project(Action.READ))],
    ("PATCH", "/api/v1/projects/{project}/segments/{segment}"): [
        Case(
            Project(Action.WRITE_PROJECT_OBJECT),
            body=_unique("d", "description"),
            if_match="/api/v1/projects/{project}/segments/{segment}",
        )
    ],
    ("DELETE", "/api/v1/projects/{project}/segments/{segment}"): [
        Case(
            Project(Action.WRITE_PROJECT_OBJECT),
            prepare=_fresh_segment,
            if_match="/api/v1/projects/{project}/segments/{segment}",
        )
    ],
    # tools and the tool policy
    ("GET", "/api/v1/projects/{project}/tools"): [Case(Project(Action.READ))],
    ("POST", "/api/v1/projects/{project}/tools"): [
        Case(Project(Action.WRITE_PROJECT_OBJECT), body=_unique("t", risk="read", reason="m"))
    ],
    ("GET", "/api/v1/projects/{project}/tools/{tool}"): [
        Case(Project(Action.READ), prepare=_fresh_tool)
    ],
    ("PATCH", "/api/v1/projects/{project}/tools/{tool}"): [
        Case(
            Project(Action.WRITE_PROJECT_OBJECT),
            prepare=_fresh_tool,
            body=_unique("d", "description"),
            if_match="/api/v1/projects/{project}/tools/{tool}",
        )
    ],
    ("POST", "/api/v1/projects/{project}/tools/{tool}/deny"): [
        Case(Project(Action.WRITE_PROJECT_OBJECT), prepare=_fresh_tool, body=_unique("d", "id"))
    ],
    ("DELETE", "/api/v1/projects/{project}/tools/{tool}"): [
        Case(
            Project(Action.WRITE_PROJECT_OBJECT),
            prepare=_fresh_tool,
            if_match="/api/v1/projects/{project}/tools/{tool}",
        )
    ],
    ("GET", "/api/v1/projects/{project}/tool-policy"): [Case(Project(Action.READ))],
    ("PUT", "/api/v1/projects/{project}/tool-policy"): [
        Case(
            Project(Action.ADMIN_PROJECT),
            body=lambda w, p: {"overrides": {"observe": {"read": "deny"}}, "reason": "matrix"},
            if_match="/api/v1/projects/{project}/tool-policy",
        )
    ],
    # governance: postures and change requests
    ("GET", "/api/v1/projects/{project}/posture"): [Case(Project(Action.READ))],
    ("PUT", "/api/v1/projects/{project}/posture"): [
        Case(
            Project(Action.ADMIN_PROJECT),
            body=lambda w, p: {"posture": {"low": {"reason": "always"}}, "reason": "matrix"},
            if_match="/api/v1/projects/{project}/posture",
        )
    ],
    ("GET", "/api/v1/projects/{project}/change-requests"): [Case(Project(Action.READ))],
    ("GET", CR): [Case(Project(Action.READ), prepare=_change_request(approved=False))],
    ("GET", CR + "/diff"): [Case(Project(Action.READ), prepare=_change_request(approved=False))],
    ("POST", CR + "/comments"): [
        Case(
            Project(Action.READ),
            prepare=_change_request(approved=False),
            body=lambda w, p: {"body": "matrix"},
        )
    ],
    ("POST", CR + "/approve"): [
        Case(Project(Action.APPROVE), prepare=_change_request(approved=False), body=lambda w, p: {})
    ],
    ("POST", CR + "/reject"): [
        Case(Project(Action.APPROVE), prepare=_change_request(approved=False), body=lambda w, p: {})
    ],
    ("PATCH", CR): [
        Case(
            Project(Action.ADMIN_PROJECT),
            prepare=_change_request(approved=False),
            body=lambda w, p: {"default": {"variation": "off"}, "reason": "matrix"},
        )
    ],
    ("PUT", CR + "/schedule"): [
        Case(
            Project(Action.WRITE_ENVIRONMENT_CONFIG),
            prepare=_change_request(approved=True),
            body=lambda w, p: {"apply_at": "2999-01-01T00:00:00Z"},
        )
    ],
    ("POST", CR + "/apply"): [
        Case(
            Project(Action.WRITE_ENVIRONMENT_CONFIG),
            prepare=_change_request(approved=True),
            body=lambda w, p: {},
        )
    ],
    ("POST", CR + "/cancel"): [
        Case(
            Project(Action.ADMIN_PROJECT),
            prepare=_change_request(approved=False),
            body=lambda w, p: {},
        )
    ],
    # runtime action approvals: approvers decide (per environment), applications ask
    ("GET", "/api/v1/projects/{project}/runtime-approvals"): [Case(Project(Action.READ))],
    ("GET", RA): [Case(Project(Action.READ), prepare=_runtime_approval)],
    ("POST", RA + "/approve"): [
        Case(Project(Action.APPROVE), prepare=_runtime_approval, body=lambda w, p: {})
    ],
    ("POST", RA + "/deny"): [
        Case(Project(Action.APPROVE), prepare=_runtime_approval, body=lambda w, p: {})
    ],
    ("POST", "/sdk/v1/approvals"): [Case(DELIVERY, body=lambda w, p: ASK_APPROVAL)],
    ("GET", "/sdk/v1/approvals/{approval_id}"): [Case(DELIVERY, prepare=_runtime_approval)],
    ("POST", "/sdk/v1/approvals/{approval_id}/withdraw"): [
        Case(DELIVERY, prepare=_runtime_approval, body=lambda w, p: {})
    ],
    # the decision log: readers of the environment read; project admins handle subjects
    ("GET", DECISIONS): [Case(Project(Action.READ_ENVIRONMENT))],
    ("GET", DECISIONS + "/export"): [Case(Project(Action.READ_ENVIRONMENT))],
    ("POST", "/api/v1/projects/{project}/subjects/export"): [
        Case(Project(Action.ADMIN_PROJECT), body=lambda w, p: {"key": "u1"})
    ],
    ("POST", "/api/v1/projects/{project}/subjects/delete"): [
        Case(Project(Action.ADMIN_PROJECT), body=lambda w, p: {"key": "u1"})
    ],
    ("GET", "/sdk/v1/privacy"): [Case(DELIVERY)],
    ("POST", "/sdk/v1/decisions"): [Case(DELIVERY, body=lambda w, p: {"records": []})],
    # audit log and server-side evaluation
    ("GET", "/api/v1/audit"): [
        Case(ANY_USER),
        Case(Project(Action.READ), query={"project": "alpha"}),
    ],
    ("POST", "/api/v1/projects/{project}/environments/{environment}/evaluate"): [
        Case(
            Project(Action.READ_ENVIRONMENT),
            body=lambda w, p: {"flag": "checkout", "context": {"key": "user-1"}},
        )
    ],
    ("GET", "/api/v1/projects/{project}/environments/{environment}/snapshot"): [
        Case(Project(Action.READ_ENVIRONMENT))
    ],
    # identity: sessions, users, members, tokens, SDK keys
    ("POST", "/api/v1/auth/logout"): [Case(ANY_USER)],
    ("GET", "/api/v1/auth/me"): [Case(ANY_USER)],
    ("POST", "/api/v1/auth/password"): [Case(ANY_USER, body=_password)],
    ("GET", "/api/v1/users"): [Case(SYSTEM_ADMIN)],
    ("POST", "/api/v1/users"): [
        Case(SYSTEM_ADMIN, body=_unique("user", "username", password=PASSWORD))
    ],
    ("GET", "/api/v1/users/{username}"): [
        Case(ANY_USER, params={"username": SELF}),
        Case(SYSTEM_ADMIN, params={"username": "tess"}),
    ],
    ("PATCH", "/api/v1/users/{username}"): [
        Case(
            SYSTEM_ADMIN,
            params={"username": "tess"},
            body=_unique("Tess ", "display_name"),
            if_match="/api/v1/users/{username}",
        )
    ],
    ("GET", "/api/v1/projects/{project}/members"): [Case(Project(Action.READ))],
    ("GET", "/api/v1/projects/{project}/members/{username}"): [Case(Project(Action.READ))],
    ("PUT", "/api/v1/projects/{project}/members/{username}"): [
        Case(
            Project(Action.ADMIN_PROJECT),
            params={"username": "tess"},
            body=lambda w, p: {"role": "viewer"},
        )
    ],
    ("DELETE", "/api/v1/projects/{project}/members/{username}"): [
        Case(Project(Action.ADMIN_PROJECT), prepare=_member_to_remove)
    ],
    ("POST", "/api/v1/tokens"): [Case(ANY_USER, body=lambda w, p: {"name": "matrix"})],
    ("GET", "/api/v1/tokens"): [Case(ANY_USER)],
    ("DELETE", "/api/v1/tokens/{prefix}"): [
        Case(ANY_USER, prepare=_own_token),
        Case(ADMIN_OR_HIDDEN, prepare=_someone_elses_token),
    ],
    ("GET", SDK_KEYS): [Case(Project(Action.ADMIN_ENVIRONMENT))],
    ("POST", SDK_KEYS): [
        Case(
            Project(Action.ADMIN_ENVIRONMENT),
            body=lambda w, p: {"kind": "client"},
            prepare=_room_for_a_key,
        )
    ],
    ("DELETE", SDK_KEYS + "/{prefix}"): [
        Case(Project(Action.ADMIN_ENVIRONMENT), prepare=_key_to_revoke)
    ],
    # delivery to SDKs (SDK keys only)
    ("GET", "/sdk/v1/snapshot"): [Case(DELIVERY)],
    ("GET", "/sdk/v1/stream"): [Case(DELIVERY, streams=True)],
    ("POST", "/sdk/v1/evaluate"): [Case(DELIVERY, body=lambda w, p: CONTEXT)],
    ("POST", "/sdk/v1/events"): [Case(DELIVERY, body=lambda w, p: {"counts": []})],
    ("POST", "/sdk/v1/metrics"): [Case(DELIVERY, body=lambda w, p: {"summaries": []})],
    # alert triggers: admins manage them, monitoring calls the secret URL
    ("GET", TRIGGERS): [Case(Project(Action.READ_ENVIRONMENT))],
    ("POST", TRIGGERS): [
        Case(
            Project(Action.ADMIN_ENVIRONMENT),
            body=lambda w, p: {"flag": "checkout", "action": "kill"},
        )
    ],
    ("GET", TRIGGERS + "/{trigger_id}"): [
        Case(Project(Action.READ_ENVIRONMENT), prepare=_alert_trigger)
    ],
    ("DELETE", TRIGGERS + "/{trigger_id}"): [
        Case(Project(Action.ADMIN_ENVIRONMENT), prepare=_alert_trigger)
    ],
    ("POST", "/hooks/alerts/{trigger_id}/{secret}"): [
        Case(SECRET_URL, prepare=_alert_trigger, body=lambda w, p: {"alerts": []})
    ],
    ("POST", "/ofrep/v1/evaluate/flags/{key}"): [Case(DELIVERY, body=lambda w, p: OFREP_CONTEXT)],
    ("POST", "/ofrep/v1/evaluate/flags"): [Case(DELIVERY, body=lambda w, p: OFREP_CONTEXT)],
}


# --- expectations -------------------------------------------------------------------------


def expected(rule: Rule, p: Principal, environment: str | None) -> str:
    """The outcome the rule prescribes: "2xx", "401", "403" or "404"."""
    if rule == DELIVERY:
        return OK if p.kind == "sdk" else "401"
    if rule == SECRET_URL:
        return OK
    if p.kind != "user":
        return "401"
    if rule == ANY_USER:
        return OK
    if rule == SYSTEM_ADMIN:
        return OK if p.system_admin else "403"
    if rule == ADMIN_OR_HIDDEN:
        return OK if p.system_admin else "404"
    assert isinstance(rule, Project)
    if p.alpha is None:
        return "404"
    role = p.alpha[environment if rule.action.per_environment else None]
    return OK if role.rank >= rule.action.role.rank else "403"


def _outcome(status: int) -> str:
    return OK if 200 <= status < 300 else str(status)


def _flatten(routes: Iterable[Any]) -> Iterator[Any]:
    """Every endpoint route, also inside included routers (FastAPI may keep them nested)."""
    for route in routes:
        if hasattr(route, "effective_candidates"):
            yield from _flatten(route.effective_candidates())
        elif getattr(route, "routes", None):
            yield from _flatten(route.routes)
        else:
            yield route


def _is_dashboard(route: Any) -> bool:
    """The dashboard's pages and forms: session only, checked in tests/dashboard."""
    module = getattr(getattr(route, "endpoint", None), "__module__", "") or ""
    return module.startswith("lockgate.dashboard")


def app_routes(app: FastAPI) -> set[tuple[str, str]]:
    found = set()
    for route in _flatten(app.routes):
        path = getattr(route, "path", "")
        if path.startswith(SKIPPED_PATHS) or _is_dashboard(route):
            continue
        for method in getattr(route, "methods", None) or ():
            if method != "HEAD" and (method, path) not in SKIPPED_ROUTES:
                found.add((method, path))
    return found


def test_routes_are_found(world: World) -> None:
    routes = app_routes(world.http.app)  # type: ignore[arg-type]
    assert ("GET", "/api/v1/projects") in routes
    assert ("GET", "/healthz") not in routes
    assert ("POST", "/api/v1/auth/login") not in routes


# --- the world ----------------------------------------------------------------------------


def _session_token(http: TestClient, username: str, **scope: Any) -> str:
    r = http.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    csrf = r.json()["csrf_token"]
    r = http.post(
        "/api/v1/tokens", json={"name": "matrix", **scope}, headers={"X-CSRF-Token": csrf}
    )
    assert r.status_code == 201, r.text
    http.cookies.clear()
    return str(r.json()["token"])


def _setup_data(world: World) -> None:
    for project in ("alpha", "beta"):
        assert world.call("POST", "/api/v1/projects", json={"key": project}).status_code == 201
        for env in ENVIRONMENTS:
            body = {"key": env, "protected": env == "production"}
            r = world.call("POST", f"/api/v1/projects/{project}/environments", json=body)
            assert r.status_code == 201, r.text
    r = world.call(
        "POST", "/api/v1/projects/alpha/flags", json={"key": "checkout", "kind": "boolean"}
    )
    assert r.status_code == 201, r.text
    assert (
        world.call("POST", "/api/v1/projects/alpha/segments", json={"key": "vip"}).status_code
        == 201
    )
    users = {
        "ada": "admin",
        "ed": "editor",
        "vic": "viewer",
        "stan": None,
        "bea": "admin",
        "val": "admin",
    }
    for username, role in users.items():
        body = {"username": username, "password": PASSWORD}
        assert world.call("POST", "/api/v1/users", json=body).status_code == 201
        if role is not None:
            r = world.call("PUT", f"/api/v1/projects/alpha/members/{username}", json={"role": role})
            assert r.status_code == 200, r.text
    world.call(
        "PUT",
        "/api/v1/projects/alpha/members/stan",
        json={"role": "editor", "environment": "staging"},
    )
    world.call("PUT", "/api/v1/projects/beta/members/bea", json={"role": "admin"})
    body = {"username": "tess", "kind": "service"}
    assert world.call("POST", "/api/v1/users", json=body).status_code == 201
    # Who proposes the change requests the matrix decides on (never one of the principals).
    assert (
        world.call(
            "POST", "/api/v1/users", json={"username": "prop", "kind": "service"}
        ).status_code
        == 201
    )
    world.call("PUT", "/api/v1/projects/alpha/members/prop", json={"role": "editor"})
    r = world.call("POST", "/api/v1/tokens", json={"name": "proposer", "user": "prop"})
    assert r.status_code == 201, r.text
    world.proposer.update(bearer(r.json()["token"]))


def _add_principals(world: World, admin_password: str) -> None:
    http, add = world.http, world.principals.__setitem__

    def user(
        name: str, username: str, alpha: dict[str | None, Role] | None, **scope: Any
    ) -> Principal:
        return Principal(
            name, bearer(_session_token(http, username, **scope)), username, alpha=alpha
        )

    add(
        "system-admin",
        Principal(
            "system-admin",
            world.admin,
            "admin",
            admin_password,
            system_admin=True,
            alpha=_roles(Role.ADMIN),
        ),
    )
    add("alpha-admin", user("alpha-admin", "ada", _roles(Role.ADMIN)))
    add("alpha-editor", user("alpha-editor", "ed", _roles(Role.EDITOR)))
    add("alpha-viewer", user("alpha-viewer", "vic", _roles(Role.VIEWER)))
    add("staging-editor", user("staging-editor", "stan", _roles(Role.VIEWER, staging=Role.EDITOR)))
    add("beta-token", user("beta-token", "bea", None, project="beta"))
    add("viewer-token", user("viewer-token", "val", _roles(Role.VIEWER), max_role="viewer"))
    r = world.call(
        "POST", SDK_KEYS.format(project="alpha", environment="staging"), json={"kind": "server"}
    )
    assert r.status_code == 201, r.text
    add("sdk-server-key", Principal("sdk-server-key", bearer(r.json()["key"]), kind="sdk"))
    add("anonymous", Principal("anonymous", kind="none"))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data = Path(tmp_path_factory.mktemp("matrix")) / "data"
    settings = Settings(data_dir=str(data), audit_checkpoint_every=10)
    with pytest.MonkeyPatch.context() as patch:
        use_cheap_hashing(patch)
        services = build_services(settings)
        boot = ensure_admin(services)
        assert boot.token is not None
        assert boot.password is not None
        app = create_app(settings, services)
        try:
            with TestClient(app) as http:
                built = World(http, bearer(boot.token), {})
                _setup_data(built)
                _add_principals(built, boot.password)
                yield built
        finally:
            services.database.dispose()


# --- the tests ----------------------------------------------------------------------------


def test_every_route_has_a_declared_access_rule(world: World) -> None:
    undeclared = sorted(app_routes(world.http.app) - set(ACCESS))  # type: ignore[arg-type]
    assert not undeclared, (
        "routes without an entry in ACCESS (tests/api/test_authorization_matrix.py) — "
        f"decide who may call them: {undeclared}"
    )


def _runs(route: tuple[str, str], case: Case) -> list[str | None]:
    per_env = isinstance(case.rule, Project) and case.rule.action.per_environment
    return list(ENVIRONMENTS) if per_env else [None]


def _request(
    world: World, p: Principal, route: tuple[str, str], case: Case, env: str | None
) -> Any:
    method, template = route
    params = DEFAULT_PARAMS | case.params | ({"environment": env} if env else {})
    if params.get("username") == SELF:
        params["username"] = p.username or "nobody"
    if case.prepare is not None:
        params |= case.prepare(world, p, params)
    headers = dict(p.headers)
    if case.if_match is not None:
        headers["If-Match"] = world.etag(case.if_match.format(**params))
    body = case.body(world, p) if case.body is not None else None
    body = _in_this_env(body, params["environment"])
    return world.http.request(
        method, template.format(**params), headers=headers, json=body, params=case.query
    )


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_authorization_matrix(world: World, principal: str) -> None:
    p = world.principals[principal]
    present = app_routes(world.http.app)  # type: ignore[arg-type]
    problems = []
    checked = 0
    for route, cases in ACCESS.items():
        if route not in present:
            continue  # declared for a route this build does not have
        for case in cases:
            for env in _runs(route, case):
                want = expected(case.rule, p, env)
                if case.streams and want == OK:
                    continue
                r = _request(world, p, route, case, env)
                checked += 1
                got = _outcome(r.status_code)
                if got != want:
                    where = f" in {env}" if env else ""
                    problems.append(
                        f"{route[0]} {route[1]}{where}: expected {want}, got {got}: {r.text[:160]}"
                    )
    assert checked > 0
    assert not problems, f"{principal}:\n" + "\n".join(problems)


def test_the_matrix_covers_each_outcome(world: World) -> None:
    """A guard against a vacuous matrix: each outcome is expected somewhere."""
    outcomes = {
        expected(case.rule, p, env)
        for p in world.principals.values()
        for cases in ACCESS.values()
        for case in cases
        for env in (None, *ENVIRONMENTS)
    }
    assert outcomes == {OK, "401", "403", "404"}
