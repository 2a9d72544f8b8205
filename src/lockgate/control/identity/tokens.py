"""API tokens: created by their owner (or by a system administrator for a service
account), listed without their secret, revoked with immediate effect.

A token never carries more authority than its creator: its project and maximum role
must lie within the caller's, a token created with a narrowed token inherits that
narrowing, and it cannot outlive the token used to create it. The value is returned
once; only its SHA-256 hash is stored.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, Select, select, update

from lockgate.control import lookup
from lockgate.control.base import Caller, Services, iso
from lockgate.control.identity import credentials
from lockgate.control.identity.users import USERNAME_PATTERN, find_user
from lockgate.errors import FieldProblem, InvalidInput, NotFound, PermissionDenied
from lockgate.policy.access import Principal, Role
from lockgate.policy.changes import AuditAction
from lockgate.store.tables import api_tokens, projects, users

__all__ = ["create_token", "list_tokens", "revoke_token", "token_by_id", "token_view"]

MAX_DAYS = 3650
PREFIX_PATTERN = re.compile(r"^[A-Za-z0-9]{1,32}$")


TOKEN_KINDS = ("standard", "automation")


def token_view(row: Row[Any]) -> dict[str, Any]:
    """A token without its secret (``row`` from :func:`_query`)."""
    return {
        "prefix": row.prefix,
        "name": row.name,
        "user": row.username,
        "project": row.project_key,
        "max_role": row.max_role,
        "kind": row.kind,
        "created_at": row.created_at,
        "created_by": row.created_by,
        "expires_at": row.expires_at,
        "last_used_at": row.last_used_at,
        "revoked": row.revoked_at is not None,
        "revoked_at": row.revoked_at,
    }


def _query() -> Select[Any]:
    return (
        select(api_tokens, users.c.username, projects.c.key.label("project_key"))
        .join(users, users.c.id == api_tokens.c.user_id)
        .outerjoin(projects, projects.c.id == api_tokens.c.project_id)
    )


def _find(conn: Connection, prefix: str) -> Row[Any]:
    if not PREFIX_PATTERN.match(prefix):
        raise NotFound(f"token {prefix!r} not found")
    row = conn.execute(_query().where(api_tokens.c.prefix == prefix)).first()
    if row is None:
        raise NotFound(f"token {prefix!r} not found")
    return row


def _expiry(now: datetime, expires_at: datetime | None, days: int | None) -> str | None:
    if expires_at is not None and days is not None:
        raise InvalidInput(
            "conflicting expiry",
            [FieldProblem("expires_in_days", "give expires_at or expires_in_days, not both")],
        )
    if days is not None:
        if not 1 <= days <= MAX_DAYS:
            raise InvalidInput(
                "bad expiry", [FieldProblem("expires_in_days", f"must be 1 to {MAX_DAYS}")]
            )
        return iso(now + timedelta(days=days))
    if expires_at is None:
        return None
    moment = expires_at if expires_at.tzinfo else expires_at.replace(tzinfo=UTC)
    try:
        text = iso(moment)
    except (OverflowError, ValueError):
        text = ""
    if not text or moment <= now:
        raise InvalidInput(
            "bad expiry", [FieldProblem("expires_at", "must be a time in the future")]
        )
    return text


def _owner(conn: Connection, caller: Caller, username: str | None) -> Row[Any]:
    principal = caller.principal
    if principal is not None and username in (None, principal.name):
        return find_user(conn, principal.name)
    if username is None:
        raise InvalidInput("whose token?", [FieldProblem("user", "required")])
    caller.require_system_admin()
    row = find_user(conn, username)
    if row.kind != "service":
        raise PermissionDenied(
            "administrators may create tokens only for service accounts; people create their own"
        )
    return row


def _ceiling(principal: Principal, project_id: int | None) -> Role:
    """The highest role the principal holds in a project (``None``: in any project)."""
    if principal.is_admin:
        best = Role.ADMIN
    else:
        roles = [
            g.role for g in principal.grants if project_id is None or g.project_id == project_id
        ]
        best = max(roles, key=lambda r: r.rank, default=Role.VIEWER)
    cap = principal.token_max_role
    return cap if cap is not None and cap.rank < best.rank else best


def _scope(
    caller: Caller, project: Row[Any] | None, max_role: Role | None
) -> tuple[int | None, Role | None]:
    """The new token's (project id, max role): within the caller's own scope."""
    principal = caller.principal
    project_id = None if project is None else project.id
    if principal is None or principal.is_system_admin:
        return project_id, max_role
    if project_id is None:
        project_id = principal.token_project_id
    if project_id is not None and not principal.sees_project(project_id):
        key = project.key if project is not None else str(project_id)
        raise NotFound(f"project {key!r} not found")
    if max_role is None:
        max_role = principal.token_max_role
    ceiling = _ceiling(principal, project_id)
    if max_role is not None and max_role.rank > ceiling.rank:
        where = "in this project" if project_id is not None else "anywhere"
        raise PermissionDenied(
            f"a token cannot have more authority than you: your highest role {where} is "
            f"{ceiling.value}, so max_role must be {ceiling.value} or lower"
        )
    return project_id, max_role


def _bounded_by_caller_token(conn: Connection, caller: Caller, expires: str | None) -> str | None:
    principal = caller.principal
    if principal is None or principal.token_id is None:
        return expires
    limit = conn.execute(
        select(api_tokens.c.expires_at).where(api_tokens.c.id == principal.token_id)
    ).scalar_one()
    if limit is None:
        return expires
    if expires is None:
        return str(limit)
    if expires > limit:
        raise InvalidInput(
            "the new token would outlive yours",
            [FieldProblem("expires_at", f"must not be later than your token's expiry {limit}")],
        )
    return expires


def create_token(
    svc: Services,
    caller: Caller,
    *,
    name: str,
    project: str | None = None,
    max_role: str | None = None,
    expires_at: datetime | None = None,
    expires_in_days: int | None = None,
    user: str | None = None,
    reason: str = "",
    kind: str = "standard",
) -> dict[str, Any]:
    """Create a token; the result's ``token`` is the only time the value is shown."""
    if kind not in TOKEN_KINDS:
        raise InvalidInput("bad kind", [FieldProblem("kind", "standard or automation")])
    if not name.strip():
        raise InvalidInput("a name is required", [FieldProblem("name", "must not be empty")])
    try:
        role = None if max_role is None else Role(max_role)
    except ValueError:
        raise InvalidInput(
            "bad max_role", [FieldProblem("max_role", "viewer, editor, approver or admin")]
        ) from None
    expires = _expiry(svc.clock(), expires_at, expires_in_days)
    with svc.change() as tx:
        owner = _owner(tx.conn, caller, user)
        project_row = None if project is None else lookup.project(tx.conn, project)
        project_id, role = _scope(caller, project_row, role)
        expires = _bounded_by_caller_token(tx.conn, caller, expires)
        issued = credentials.new_secret("lgt")
        credentials.insert_token(
            tx.conn,
            user_id=owner.id,
            name=name.strip(),
            prefix=issued.prefix,
            secret_hash=issued.secret_hash,
            now=tx.now,
            created_by=caller.actor_name,
            project_id=project_id,
            max_role=None if role is None else role.value,
            expires_at=expires,
            kind=kind,
        )
        view = token_view(_find(tx.conn, issued.prefix))
        tx.record(
            caller,
            {
                "action": AuditAction.TOKEN_CREATED.value,
                "object_type": "token",
                "object_key": issued.prefix,
                "project": view["project"],
                "after": view,
                "reason": reason,
            },
        )
    return view | {"token": issued.value}


def list_tokens(svc: Services, caller: Caller, user: str | None = None) -> list[dict[str, Any]]:
    """The caller's own tokens; system administrators see everyone's (or ``user``'s)."""
    principal = caller.principal
    query = _query().order_by(api_tokens.c.created_at, api_tokens.c.id)
    if principal is not None and not principal.is_system_admin:
        if user not in (None, principal.name):
            raise PermissionDenied("you can list only your own tokens")
        user = principal.name
    if user is not None:
        if not USERNAME_PATTERN.match(user):
            return []
        query = query.where(users.c.username == user)
    with svc.view() as conn:
        return [token_view(r) for r in conn.execute(query).all()]


def revoke_token(svc: Services, caller: Caller, prefix: str, reason: str = "") -> dict[str, Any]:
    """Revoke a token (its owner or a system administrator); effective at once."""
    principal = caller.principal
    with svc.change() as tx:
        row = _find(tx.conn, prefix)
        if (
            principal is not None
            and not principal.is_system_admin
            and row.user_id != principal.user_id
        ):
            raise NotFound(f"token {prefix!r} not found")
        before = token_view(row)
        if row.revoked_at is not None:
            return before
        tx.conn.execute(
            update(api_tokens).where(api_tokens.c.id == row.id).values(revoked_at=tx.now)
        )
        after = token_view(_find(tx.conn, prefix))
        tx.record(
            caller,
            {
                "action": AuditAction.TOKEN_REVOKED.value,
                "object_type": "token",
                "object_key": prefix,
                "project": after["project"],
                "before": before,
                "after": after,
                "reason": reason,
            },
        )
    return after


def token_by_id(svc: Services, token_id: int) -> dict[str, Any]:
    with svc.view() as conn:
        return token_view(conn.execute(_query().where(api_tokens.c.id == token_id)).one())
