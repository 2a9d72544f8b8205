"""The release overview: every behavior of a project with its state in every environment.

One read for a whole page of the dashboard: the behaviors (filtered), their configuration in
each environment side by side, guardrail health, pending change requests and active
incidents, and the caller's role in each environment (so that a page offers only the
actions that would succeed). A fixed number of queries whatever the number of behaviors.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, func, or_, select

from lockgate.control import lookup
from lockgate.control.base import Caller, Services
from lockgate.control.governance.requests import PENDING_STATES
from lockgate.policy.access import Action, Role, role_for
from lockgate.store.tables import (
    change_requests,
    environments,
    flag_configs,
    flag_lifecycle,
    flags,
    guardrails,
    incidents,
    projects,
)

__all__ = [
    "LIFECYCLE_MARKS",
    "BehaviorRow",
    "EnvironmentColumn",
    "Filters",
    "Overview",
    "environment_columns",
    "overview",
    "project_role",
    "role_in",
    "visible_projects",
]


@dataclass(frozen=True)
class Filters:
    """What the overview shows; ``None``/empty means "any"."""

    environment: str | None = None
    risk_tier: str | None = None
    tag: str | None = None
    owner: str | None = None
    text: str | None = None


@dataclass(frozen=True)
class EnvironmentColumn:
    key: str
    name: str
    protected: bool
    development: bool
    role: str | None
    """The caller's role there (``None``: the caller has none; system actors: admin)."""


@dataclass(frozen=True)
class BehaviorRow:
    key: str
    name: str
    owner: str
    risk_tier: str
    lifecycle: str
    kind: str
    behavior_kind: str
    tags: list[str]
    variations: list[dict[str, Any]]
    configs: dict[str, dict[str, Any]]
    """Environment key → configuration (with ``version``)."""
    guardrails: dict[str, dict[str, int]]
    """Environment key → guardrail state → count."""
    pending_requests: int
    marks: dict[str, Any] = field(default_factory=dict)
    """Lifecycle marks the store holds for the behavior (see ``LIFECYCLE_MARKS``)."""


LIFECYCLE_MARKS = ("cleanup_due_at", "permanent")
"""Clean-up marks (docs/cleanup.md) shown beside the lifecycle: when the behavior's cleanup
rule came due, and why a permanent behavior stays; empty ones are not shown."""


def _marks(row: Any) -> dict[str, Any]:
    values = row._mapping
    return {name: values[name] for name in LIFECYCLE_MARKS if values.get(name)}


@dataclass(frozen=True)
class Overview:
    project: str
    project_name: str
    environments: list[EnvironmentColumn]
    behaviors: list[BehaviorRow]
    incidents: list[dict[str, Any]]
    pending_requests: int
    total: int
    extra: dict[str, Any] = field(default_factory=dict)


def role_in(caller: Caller, project_id: int, environment_id: int | None) -> str | None:
    """The caller's effective role on a project or one environment of it."""
    if caller.principal is None:
        return Role.ADMIN.value
    role = role_for(caller.principal, project_id, environment_id)
    if role is not None and caller.principal.is_automation and role.rank > Role.EDITOR.rank:
        return Role.EDITOR.value  # automation proposes; it never approves
    return None if role is None else role.value


def visible_projects(svc: Services, caller: Caller) -> list[dict[str, str]]:
    """The projects the caller can see, by key: ``{key, name}``."""
    with svc.view() as conn:
        rows = conn.execute(
            select(projects.c.id, projects.c.key, projects.c.name).order_by(projects.c.key)
        ).all()
    principal = caller.principal
    return [
        {"key": r.key, "name": r.name or r.key}
        for r in rows
        if principal is None or principal.sees_project(r.id)
    ]


def _flag_conditions(project_id: int, filters: Filters) -> list[Any]:
    where: list[Any] = [flags.c.project_id == project_id, flags.c.archived.is_(False)]
    if filters.risk_tier:
        where.append(flags.c.risk_tier == filters.risk_tier)
    if filters.owner:
        where.append(flags.c.owner == filters.owner)
    if filters.text:
        like = f"%{filters.text.lower()}%"
        where.append(
            or_(
                func.lower(flags.c.key).like(like),
                func.lower(flags.c.name).like(like),
                func.lower(flags.c.description).like(like),
            )
        )
    return where


def _environments(conn: Any, caller: Caller, project_id: int) -> list[tuple[int, Any]]:
    rows = conn.execute(
        select(environments)
        .where(environments.c.project_id == project_id)
        .order_by(environments.c.position, environments.c.key)
    ).all()
    return [(r.id, r) for r in rows]


def _configs(conn: Any, flag_ids: list[int]) -> dict[int, dict[str, dict[str, Any]]]:
    found: dict[int, dict[str, dict[str, Any]]] = defaultdict(dict)
    if not flag_ids:
        return found
    rows = conn.execute(
        select(
            flag_configs.c.flag_id,
            flag_configs.c.config,
            flag_configs.c.version,
            environments.c.key.label("env_key"),
        )
        .join(environments, environments.c.id == flag_configs.c.environment_id)
        .where(flag_configs.c.flag_id.in_(flag_ids))
    ).all()
    for r in rows:
        found[r.flag_id][r.env_key] = {**r.config, "version": r.version}
    return found


def _guardrail_states(conn: Any, project_id: int) -> dict[int, dict[str, dict[str, int]]]:
    found: dict[int, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    rows = conn.execute(
        select(
            guardrails.c.flag_id,
            environments.c.key.label("env_key"),
            guardrails.c.state,
            func.count().label("n"),
        )
        .join(environments, environments.c.id == guardrails.c.environment_id)
        .where(guardrails.c.project_id == project_id)
        .group_by(guardrails.c.flag_id, environments.c.key, guardrails.c.state)
    ).all()
    for r in rows:
        found[r.flag_id][r.env_key][r.state] = int(r.n)
    return found


def _pending(conn: Any, project_id: int) -> dict[str, int]:
    rows = conn.execute(
        select(change_requests.c.object_key, func.count().label("n"))
        .where(
            and_(
                change_requests.c.project_id == project_id,
                change_requests.c.object_type == "flag",
                change_requests.c.state.in_(PENDING_STATES),
            )
        )
        .group_by(change_requests.c.object_key)
    ).all()
    return {r.object_key: int(r.n) for r in rows}


def _active_incidents(conn: Any, project_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(incidents, environments.c.key.label("env_key"))
        .join(environments, environments.c.id == incidents.c.environment_id)
        .where(incidents.c.project_id == project_id, incidents.c.state == "active")
        .order_by(incidents.c.id)
    ).all()
    return [
        {
            "id": r.id,
            "environment": r.env_key,
            "reason": r.reason,
            "started_by": r.started_by,
            "started_at": r.started_at,
            "covered": list(r.covered or []),
        }
        for r in rows
    ]


def overview(
    svc: Services, caller: Caller, project_key: str, filters: Filters | None = None
) -> Overview:
    """The overview of one project, as the caller may see it (hidden projects: 404)."""
    filters = filters or Filters()
    with svc.view() as conn:
        project = caller.project(conn, project_key, Action.READ)
        envs = _environments(conn, caller, project.id)
        if filters.environment:
            lookup.environment(conn, project, filters.environment)  # 404 naming it
        rows = conn.execute(
            select(
                flags,
                flag_lifecycle.c.cleanup_due_at,
                flag_lifecycle.c.permanent_reason.label("permanent"),
            )
            .outerjoin(flag_lifecycle, flag_lifecycle.c.flag_id == flags.c.id)
            .where(*_flag_conditions(project.id, filters))
            .order_by(flags.c.key)
        ).all()
        if filters.tag:
            rows = [r for r in rows if filters.tag in (r.tags or [])]
        configs = _configs(conn, [r.id for r in rows])
        states = _guardrail_states(conn, project.id)
        pending = _pending(conn, project.id)
        active = _active_incidents(conn, project.id)
    columns = [
        EnvironmentColumn(
            key=e.key,
            name=e.name or e.key,
            protected=bool(e.protected),
            development=bool(e.development),
            role=role_in(caller, project.id, env_id),
        )
        for env_id, e in envs
        if not filters.environment or e.key == filters.environment
    ]
    behaviors = [
        BehaviorRow(
            key=r.key,
            name=r.name or r.key,
            owner=r.owner or "",
            risk_tier=r.risk_tier,
            lifecycle=r.lifecycle,
            kind=r.kind,
            behavior_kind=r.behavior_kind,
            tags=list(r.tags or []),
            variations=list(r.variations or []),
            configs=configs.get(r.id, {}),
            guardrails={k: dict(v) for k, v in states.get(r.id, {}).items()},
            pending_requests=pending.get(r.key, 0),
            marks=_marks(r),
        )
        for r in rows
    ]
    return Overview(
        project=project.key,
        project_name=project.name or project.key,
        environments=columns,
        behaviors=behaviors,
        incidents=active,
        pending_requests=sum(pending.values()),
        total=len(behaviors),
    )


def environment_columns(svc: Services, caller: Caller, project_key: str) -> list[EnvironmentColumn]:
    """A project's environments in order, each with the caller's role there."""
    with svc.view() as conn:
        project = caller.project(conn, project_key, Action.READ)
        envs = _environments(conn, caller, project.id)
    return [
        EnvironmentColumn(
            key=e.key,
            name=e.name or e.key,
            protected=bool(e.protected),
            development=bool(e.development),
            role=role_in(caller, project.id, env_id),
        )
        for env_id, e in envs
    ]


def project_role(svc: Services, caller: Caller, project_key: str) -> str | None:
    """The caller's role on the project as a whole (not one environment of it)."""
    with svc.view() as conn:
        project = caller.project(conn, project_key, Action.READ)
    return role_in(caller, project.id, None)
