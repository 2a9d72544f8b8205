"""Project members: role grants for a whole project or for one of its environments.

Project administrators and system administrators manage grants. Nobody can grant,
change or revoke their own grants, and nobody can grant a role above the one they hold
where the grant applies — so nobody can give themselves authority.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, delete, insert, nulls_first, select, update

from lockgate.control import lookup
from lockgate.control.base import Caller, Services
from lockgate.control.identity.users import find_user
from lockgate.errors import FieldProblem, InvalidInput, NotFound, PermissionDenied
from lockgate.policy.access import Action, Role, role_for
from lockgate.policy.changes import AuditAction
from lockgate.store.tables import environments, role_grants, users

__all__ = ["get_member", "grant_role", "list_members", "revoke_member"]


def _grant_rows(conn: Connection, project_id: int, user_id: int | None = None) -> list[Row[Any]]:
    query = (
        select(
            role_grants,
            environments.c.key.label("env_key"),
            users.c.username,
            users.c.display_name,
            users.c.kind,
            users.c.disabled,
        )
        .join(users, users.c.id == role_grants.c.user_id)
        .outerjoin(environments, environments.c.id == role_grants.c.environment_id)
        .where(role_grants.c.project_id == project_id)
        .order_by(users.c.username, nulls_first(environments.c.position), environments.c.key)
    )
    if user_id is not None:
        query = query.where(role_grants.c.user_id == user_id)
    return list(conn.execute(query).all())


def _views(rows: list[Row[Any]]) -> list[dict[str, Any]]:
    members: dict[str, dict[str, Any]] = {}
    for row in rows:
        member = members.setdefault(
            row.username,
            {
                "username": row.username,
                "display_name": row.display_name,
                "kind": row.kind,
                "disabled": row.disabled,
                "grants": [],
            },
        )
        member["grants"].append(
            {
                "role": row.role,
                "environment": row.env_key,
                "created_at": row.created_at,
                "created_by": row.created_by,
            }
        )
    for member in members.values():  # the project-wide grant first
        member["grants"].sort(key=lambda g: g["environment"] is not None)
    return list(members.values())


def list_members(svc: Services, caller: Caller, project_key: str) -> list[dict[str, Any]]:
    """One item per grant (a member with a project role and an environment role has two)."""
    with svc.view() as conn:
        project = caller.project(conn, project_key, Action.READ)
        rows = _grant_rows(conn, project.id)
    return [
        {
            "username": r.username,
            "display_name": r.display_name,
            "kind": r.kind,
            "disabled": r.disabled,
            "role": r.role,
            "environment": r.env_key,
            "created_at": r.created_at,
            "created_by": r.created_by,
        }
        for r in rows
    ]


def get_member(svc: Services, caller: Caller, project_key: str, username: str) -> dict[str, Any]:
    with svc.view() as conn:
        project = caller.project(conn, project_key, Action.READ)
        user = find_user(conn, username)
        return _member(conn, project.id, user, project_key)


def _member(conn: Connection, project_id: int, user: Row[Any], project_key: str) -> dict[str, Any]:
    views = _views(_grant_rows(conn, project_id, user.id))
    if not views:
        raise NotFound(f"user {user.username!r} is not a member of project {project_key!r}")
    return views[0]


def _check_not_self(caller: Caller, user: Row[Any]) -> None:
    if caller.principal is not None and caller.principal.user_id == user.id:
        raise PermissionDenied("nobody can grant, change or revoke their own roles")


def _check_within_own(caller: Caller, project_id: int, env_id: int | None, role: Role) -> None:
    principal = caller.principal
    if principal is None:
        return
    own = role_for(principal, project_id, env_id)
    if own is None or own.rank < role.rank:
        held = own.value if own is not None else "none"
        raise PermissionDenied(
            f"you cannot grant a role above your own ({held} here, {role.value} requested)"
        )


def _existing(
    conn: Connection, user_id: int, project_id: int, env_id: int | None
) -> Row[Any] | None:
    env_match = (
        role_grants.c.environment_id.is_(None)
        if env_id is None
        else role_grants.c.environment_id == env_id
    )
    return conn.execute(
        select(role_grants).where(
            role_grants.c.user_id == user_id, role_grants.c.project_id == project_id, env_match
        )
    ).first()


def _role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise InvalidInput(
            "bad role", [FieldProblem("role", "viewer, editor, approver or admin")]
        ) from None


def grant_role(
    svc: Services,
    caller: Caller,
    project_key: str,
    username: str,
    role: str,
    env_key: str | None = None,
    reason: str = "",
) -> dict[str, Any]:
    """Give ``username`` ``role`` in the project (or only in ``env_key``); replaces the
    grant for the same scope."""
    wanted = _role(role)
    with svc.change() as tx:
        project = caller.project(tx.conn, project_key, Action.ADMIN_PROJECT)
        env = None if env_key is None else lookup.environment(tx.conn, project, env_key)
        env_id = None if env is None else env.id
        user = find_user(tx.conn, username, lock=True)
        _check_not_self(caller, user)
        _check_within_own(caller, project.id, env_id, wanted)
        existing = _existing(tx.conn, user.id, project.id, env_id)
        if existing is not None and existing.role == wanted.value:
            return _member(tx.conn, project.id, user, project_key)
        if existing is None:
            tx.conn.execute(
                insert(role_grants).values(
                    user_id=user.id,
                    project_id=project.id,
                    environment_id=env_id,
                    role=wanted.value,
                    created_at=tx.now,
                    created_by=caller.actor_name,
                )
            )
        else:
            tx.conn.execute(
                update(role_grants)
                .where(role_grants.c.id == existing.id)
                .values(role=wanted.value, created_at=tx.now, created_by=caller.actor_name)
            )
        tx.record(
            caller,
            {
                "action": AuditAction.MEMBER_GRANTED.value,
                "object_type": "member",
                "object_key": username,
                "project": project_key,
                "environment": env_key,
                "before": None if existing is None else {"role": existing.role},
                "after": {"role": wanted.value},
                "reason": reason,
            },
        )
        return _member(tx.conn, project.id, user, project_key)


def revoke_member(
    svc: Services,
    caller: Caller,
    project_key: str,
    username: str,
    env_key: str | None = None,
    reason: str = "",
) -> None:
    """Remove ``username``'s grant for ``env_key``, or (no ``env_key``) all their grants
    in the project."""
    with svc.change() as tx:
        project = caller.project(tx.conn, project_key, Action.ADMIN_PROJECT)
        env = None if env_key is None else lookup.environment(tx.conn, project, env_key)
        user = find_user(tx.conn, username, lock=True)
        _check_not_self(caller, user)
        before = _member(tx.conn, project.id, user, project_key)
        query = delete(role_grants).where(
            role_grants.c.user_id == user.id, role_grants.c.project_id == project.id
        )
        if env is not None:
            if _existing(tx.conn, user.id, project.id, env.id) is None:
                raise NotFound(f"user {username!r} has no grant in environment {env_key!r}")
            query = query.where(role_grants.c.environment_id == env.id)
        tx.conn.execute(query)
        remaining = _views(_grant_rows(tx.conn, project.id, user.id))
        tx.record(
            caller,
            {
                "action": AuditAction.MEMBER_REVOKED.value,
                "object_type": "member",
                "object_key": username,
                "project": project_key,
                "environment": env_key,
                "before": {"grants": _scopes(before["grants"])},
                "after": {"grants": _scopes(remaining[0]["grants"] if remaining else [])},
                "reason": reason,
            },
        )


def _scopes(grants: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"role": g["role"], "environment": g["environment"]} for g in grants]
