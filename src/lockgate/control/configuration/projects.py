"""Projects and their ordered environments."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, func, insert, select, update

from lockgate.control import lookup
from lockgate.control.base import Caller, Services
from lockgate.control.configuration.flags import default_config
from lockgate.engine.validate import KEY_PATTERN
from lockgate.errors import Conflict, FieldProblem, InvalidInput
from lockgate.policy.access import Action
from lockgate.store.tables import environments, flag_config_versions, flag_configs, flags, projects

__all__ = [
    "create_environment",
    "create_project",
    "environment_view",
    "get_environment",
    "get_project",
    "list_environments",
    "list_projects",
    "project_view",
    "update_environment",
    "update_project",
]


def check_key(key: str, field: str = "key") -> None:
    if not KEY_PATTERN.match(key):
        raise InvalidInput(
            f"invalid {field}",
            [
                FieldProblem(
                    field,
                    "1-128 letters, digits, '_', '.', ':' or '-', starting with a letter or digit",
                )
            ],
        )


def check_version(current: int, expected: int | None, what: str) -> None:
    """Optimistic concurrency: refuse a write based on a version that is not current."""
    if expected is not None and expected != current:
        raise Conflict(
            f"{what} was changed by someone else (version {current}, you sent {expected}); "
            "reload it and retry",
            current_version=current,
        )


def project_view(row: Row[Any]) -> dict[str, Any]:
    return {
        "key": row.key,
        "name": row.name,
        "description": row.description,
        "version": row.version,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "created_by": row.created_by,
    }


def environment_view(row: Row[Any]) -> dict[str, Any]:
    return {
        "key": row.key,
        "name": row.name,
        "position": row.position,
        "protected": row.protected,
        "version": row.version,
        "snapshot_version": row.snapshot_version,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def create_project(
    svc: Services, caller: Caller, key: str, name: str, description: str = ""
) -> dict[str, Any]:
    caller.require_system_admin()
    check_key(key)
    with svc.change() as tx:
        if tx.conn.execute(select(projects.c.id).where(projects.c.key == key)).first():
            raise Conflict(f"project {key!r} already exists")
        tx.conn.execute(
            insert(projects).values(
                key=key,
                name=name or key,
                description=description,
                version=1,
                created_at=tx.now,
                updated_at=tx.now,
                created_by=caller.actor_name,
            )
        )
        row = lookup.project(tx.conn, key)
        view = project_view(row)
        tx.record(
            caller,
            {
                "action": "project:created",
                "object_type": "project",
                "object_key": key,
                "project": key,
                "after": view,
            },
        )
    return view


def list_projects(svc: Services, caller: Caller) -> list[dict[str, Any]]:
    with svc.view() as conn:
        rows = conn.execute(select(projects).order_by(projects.c.key)).all()
    principal = caller.principal
    return [project_view(r) for r in rows if principal is None or principal.sees_project(r.id)]


def get_project(svc: Services, caller: Caller, key: str) -> dict[str, Any]:
    with svc.view() as conn:
        row = lookup.project(conn, key)
    caller.authorize(Action.READ, row.id, what=f"project {key!r}")
    return project_view(row)


def update_project(
    svc: Services,
    caller: Caller,
    key: str,
    changes: dict[str, Any],
    expected_version: int | None,
    reason: str = "",
) -> dict[str, Any]:
    with svc.change() as tx:
        row = lookup.project(tx.conn, key)
        caller.authorize(Action.ADMIN_PROJECT, row.id, what=f"project {key!r}")
        check_version(row.version, expected_version, f"project {key!r}")
        before = project_view(row)
        tx.conn.execute(
            update(projects)
            .where(projects.c.id == row.id)
            .values(**changes, version=row.version + 1, updated_at=tx.now)
        )
        after = project_view(lookup.project(tx.conn, key))
        tx.record(
            caller,
            {
                "action": "project:updated",
                "object_type": "project",
                "object_key": key,
                "project": key,
                "before": before,
                "after": after,
                "reason": reason,
            },
        )
    return after


def list_environments(svc: Services, caller: Caller, project_key: str) -> list[dict[str, Any]]:
    with svc.view() as conn:
        project = caller.project(conn, project_key, Action.READ)
        rows = conn.execute(
            select(environments)
            .where(environments.c.project_id == project.id)
            .order_by(environments.c.position, environments.c.key)
        ).all()
    return [environment_view(r) for r in rows]


def get_environment(svc: Services, caller: Caller, project_key: str, key: str) -> dict[str, Any]:
    with svc.view() as conn:
        project = caller.project(conn, project_key, Action.READ)
        return environment_view(lookup.environment(conn, project, key))


def create_environment(
    svc: Services,
    caller: Caller,
    project_key: str,
    key: str,
    name: str = "",
    protected: bool = False,
    position: int | None = None,
) -> dict[str, Any]:
    check_key(key)
    with svc.change() as tx:
        project = caller.project(tx.conn, project_key, Action.ADMIN_PROJECT)
        if tx.conn.execute(
            select(environments.c.id).where(
                environments.c.project_id == project.id, environments.c.key == key
            )
        ).first():
            raise Conflict(f"environment {key!r} already exists in project {project_key!r}")
        if position is None:
            position = (
                tx.conn.execute(
                    select(func.max(environments.c.position)).where(
                        environments.c.project_id == project.id
                    )
                ).scalar()
                or 0
            ) + 1
        tx.conn.execute(
            insert(environments).values(
                project_id=project.id,
                key=key,
                name=name or key,
                position=position,
                protected=protected,
                version=1,
                snapshot_version=1,
                created_at=tx.now,
                updated_at=tx.now,
                created_by=caller.actor_name,
            )
        )
        env = lookup.environment(tx.conn, project, key)
        _configure_existing_flags(tx.conn, project.id, env.id, tx.now, caller.actor_name)
        view = environment_view(env)
        tx.record(
            caller,
            {
                "action": "environment:created",
                "object_type": "environment",
                "object_key": key,
                "project": project_key,
                "environment": key,
                "after": view,
            },
        )
    return view


def _configure_existing_flags(
    conn: Connection, project_id: int, environment_id: int, now: str, actor: str
) -> None:
    for flag in conn.execute(select(flags).where(flags.c.project_id == project_id)).all():
        config = default_config(flag.kind, flag.variations)
        conn.execute(
            insert(flag_configs).values(
                flag_id=flag.id,
                environment_id=environment_id,
                version=1,
                config=config,
                updated_at=now,
                updated_by=actor,
            )
        )
        conn.execute(
            insert(flag_config_versions).values(
                flag_id=flag.id,
                environment_id=environment_id,
                version=1,
                config=config,
                created_at=now,
                created_by=actor,
                reason="environment created",
            )
        )


def update_environment(
    svc: Services,
    caller: Caller,
    project_key: str,
    key: str,
    changes: dict[str, Any],
    expected_version: int | None,
    reason: str = "",
) -> dict[str, Any]:
    with svc.change() as tx:
        project = caller.project(tx.conn, project_key, Action.ADMIN_PROJECT)
        env = lookup.environment(tx.conn, project, key)
        check_version(env.version, expected_version, f"environment {key!r}")
        before = environment_view(env)
        tx.conn.execute(
            update(environments)
            .where(environments.c.id == env.id)
            .values(**changes, version=env.version + 1, updated_at=tx.now)
        )
        after = environment_view(lookup.environment(tx.conn, project, key))
        tx.record(
            caller,
            {
                "action": "environment:updated",
                "object_type": "environment",
                "object_key": key,
                "project": project_key,
                "environment": key,
                "before": before,
                "after": after,
                "reason": reason,
            },
        )
    return after
