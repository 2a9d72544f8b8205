"""Local users: people (with an Argon2 password hash) and service accounts (tokens only).

Only system administrators create, list and change users; a user may read themselves.
Nobody may change their own administrator status or disable themselves. Password hashes
never leave this module: views and audit entries show whether a password is set, no more.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Connection, Row, func, insert, select, update

from lockgate.control.base import Caller, Services
from lockgate.control.identity.login_limits import LoginLimiter, login_keys
from lockgate.control.identity.passwords import (
    MIN_PASSWORD_LENGTH,
    hash_password,
    needs_rehash,
    verify_password,
)
from lockgate.errors import Conflict, FieldProblem, InvalidInput, NotFound, PermissionDenied
from lockgate.policy.changes import AuditAction
from lockgate.store.tables import (
    api_tokens,
    environments,
    projects,
    role_grants,
    sessions,
    users,
)

__all__ = [
    "KINDS",
    "MAX_PASSWORD_LENGTH",
    "USERNAME_PATTERN",
    "change_password",
    "check_password",
    "create_user",
    "find_user",
    "get_user",
    "list_users",
    "rehash_if_needed",
    "revoke_sessions",
    "update_user",
    "user_view",
]

KINDS = ("human", "service")
USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,127}$")
MAX_PASSWORD_LENGTH = 1024
UPDATABLE = ("display_name", "disabled", "is_admin")


def user_view(row: Row[Any]) -> dict[str, Any]:
    return {
        "username": row.username,
        "display_name": row.display_name,
        "kind": row.kind,
        "is_admin": row.is_admin,
        "disabled": row.disabled,
        "has_password": row.password_hash is not None,
        "version": row.version,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "created_by": row.created_by,
    }


def find_user(conn: Connection, username: str, *, lock: bool = False) -> Row[Any]:
    if not USERNAME_PATTERN.match(username):  # no such user could exist (nor be queried)
        raise NotFound(f"user {username!r} not found")
    query = select(users).where(users.c.username == username)
    row = conn.execute(query.with_for_update() if lock else query).first()
    if row is None:
        raise NotFound(f"user {username!r} not found")
    return row


def check_password(password: str, field: str = "password") -> None:
    """Refuse passwords that are too short (or absurdly long, to bound hashing work)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            "password too short",
            [FieldProblem(field, f"must be at least {MIN_PASSWORD_LENGTH} characters")],
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(
            "password too long",
            [FieldProblem(field, f"must be at most {MAX_PASSWORD_LENGTH} characters")],
        )


def _check_new_user(username: str, kind: str, password: str | None) -> None:
    if not USERNAME_PATTERN.match(username):
        raise InvalidInput(
            "invalid username",
            [
                FieldProblem(
                    "username",
                    "1-128 letters, digits, '_', '.', '@', '+' or '-', "
                    "starting with a letter or digit",
                )
            ],
        )
    if kind not in KINDS:
        raise InvalidInput("invalid kind", [FieldProblem("kind", "must be human or service")])
    if kind == "service" and password is not None:
        raise InvalidInput(
            "service accounts have no password",
            [FieldProblem("password", "not allowed for service accounts; they use API tokens")],
        )
    if kind == "human":
        if password is None:
            raise InvalidInput(
                "a password is required", [FieldProblem("password", "required for human users")]
            )
        check_password(password)


def create_user(
    svc: Services,
    caller: Caller,
    *,
    username: str,
    display_name: str = "",
    kind: str = "human",
    password: str | None = None,
    is_admin: bool = False,
    reason: str = "",
) -> dict[str, Any]:
    caller.require_system_admin()
    _check_new_user(username, kind, password)
    password_hash = None if password is None else hash_password(password)
    with svc.change() as tx:
        clash = tx.conn.execute(
            select(users.c.username).where(func.lower(users.c.username) == username.lower())
        ).first()
        if clash is not None:
            raise Conflict(f"user {clash.username!r} already exists")
        tx.conn.execute(
            insert(users).values(
                username=username,
                display_name=display_name or username,
                kind=kind,
                password_hash=password_hash,
                is_admin=is_admin,
                disabled=False,
                version=1,
                created_at=tx.now,
                updated_at=tx.now,
                created_by=caller.actor_name,
            )
        )
        view = user_view(find_user(tx.conn, username))
        tx.record(
            caller,
            {
                "action": AuditAction.USER_CREATED.value,
                "object_type": "user",
                "object_key": username,
                "after": view,
                "reason": reason,
            },
        )
    return view


def list_users(svc: Services, caller: Caller) -> list[dict[str, Any]]:
    caller.require_system_admin()
    with svc.view() as conn:
        rows = conn.execute(select(users).order_by(users.c.username)).all()
    return [user_view(r) for r in rows]


def _grants(conn: Connection, user_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(
            projects.c.key.label("project"),
            environments.c.key.label("environment"),
            role_grants.c.role,
        )
        .join(projects, projects.c.id == role_grants.c.project_id)
        .outerjoin(environments, environments.c.id == role_grants.c.environment_id)
        .where(role_grants.c.user_id == user_id)
        .order_by(projects.c.key, environments.c.key)
    ).all()
    return [{"project": r.project, "environment": r.environment, "role": r.role} for r in rows]


def get_user(svc: Services, caller: Caller, username: str) -> dict[str, Any]:
    """A user with their role grants: system administrators, or the user themselves."""
    principal = caller.principal
    if principal is not None and principal.name != username:
        caller.require_system_admin()
    with svc.view() as conn:
        row = find_user(conn, username)
        return user_view(row) | {"grants": _grants(conn, row.id)}


def _check_self_update(caller: Caller, row: Row[Any], changes: dict[str, Any]) -> None:
    principal = caller.principal
    if principal is None or principal.user_id != row.id:
        return
    if "is_admin" in changes and changes["is_admin"] != row.is_admin:
        raise PermissionDenied("nobody can change their own administrator status")
    if changes.get("disabled") and not row.disabled:
        raise PermissionDenied("you cannot disable yourself")


def update_user(
    svc: Services,
    caller: Caller,
    username: str,
    changes: dict[str, Any],
    expected_version: int | None,
    reason: str = "",
) -> dict[str, Any]:
    """Change a user's display name, disabled flag or administrator status."""
    from lockgate.control.lookup import check_version

    caller.require_system_admin()
    unknown = sorted(set(changes) - set(UPDATABLE))
    if unknown:
        raise InvalidInput(
            "unknown user fields", [FieldProblem(f, "unknown or read-only field") for f in unknown]
        )
    with svc.change() as tx:
        row = find_user(tx.conn, username, lock=True)
        _check_self_update(caller, row, changes)
        check_version(row.version, expected_version, f"user {username!r}")
        before = user_view(row)
        if all(getattr(row, name) == value for name, value in changes.items()):
            return before  # nothing changes: no new version, no audit entry
        tx.conn.execute(
            update(users)
            .where(users.c.id == row.id)
            .values(**changes, version=row.version + 1, updated_at=tx.now)
        )
        evidence: dict[str, Any] = {}
        if changes.get("disabled") and not row.disabled:
            revoke_sessions(tx.conn, row.id, tx.now)
            # Re-enabling restores the account, not its old credentials: they are revoked.
            evidence["revoked_tokens"] = revoke_tokens(tx.conn, row.id, tx.now)
        after = user_view(find_user(tx.conn, username))
        tx.record(
            caller,
            {
                "action": AuditAction.USER_UPDATED.value,
                "object_type": "user",
                "object_key": username,
                "before": before,
                "after": after,
                "reason": reason,
                "evidence": evidence,
            },
        )
    return after


def revoke_sessions(
    conn: Connection, user_id: int, now: str, *, keep_session_id: int | None = None
) -> None:
    """End every active dashboard session of a user (except ``keep_session_id``)."""
    query = (
        update(sessions)
        .where(sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    if keep_session_id is not None:
        query = query.where(sessions.c.id != keep_session_id)
    conn.execute(query)


def revoke_tokens(conn: Connection, user_id: int, now: str) -> list[str]:
    """Revoke every live API token of a user; the prefixes of those revoked, in order."""
    live = (api_tokens.c.user_id == user_id, api_tokens.c.revoked_at.is_(None))
    prefixes = list(
        conn.execute(select(api_tokens.c.prefix).where(*live).order_by(api_tokens.c.id)).scalars()
    )
    conn.execute(update(api_tokens).where(*live).values(revoked_at=now))
    return prefixes


def change_password(
    svc: Services,
    caller: Caller,
    current: str,
    new: str,
    *,
    limiter: LoginLimiter | None = None,
    address: str = "unknown",
) -> None:
    """Change the caller's own password, proving the current one.

    Wrong current passwords count against the same limits as failed logins. The caller's
    other dashboard sessions end; the session used for the change (if any) stays valid.
    API tokens are not affected.
    """
    principal = caller.principal
    if principal is None:
        raise PermissionDenied("only a user can change their own password")
    check_password(new, "new_password")
    with svc.view() as conn:
        row = find_user(conn, principal.name)
    if row.kind != "human":
        raise InvalidInput(
            "service accounts have no password",
            [FieldProblem("new_password", "service accounts authenticate with API tokens")],
        )
    keys = login_keys(row.username, address)
    attempt = limiter.begin(keys) if limiter is not None else None
    if not verify_password(row.password_hash, current):
        raise InvalidInput(
            "the current password is wrong",
            [FieldProblem("current_password", "does not match your current password")],
        )
    if limiter is not None and attempt is not None:
        limiter.succeeded(attempt, clear=keys[:1])
    new_hash = hash_password(new)
    session_id = principal.extra.get("session_id")
    with svc.change() as tx:
        tx.conn.execute(
            update(users)
            .where(users.c.id == row.id)
            .values(password_hash=new_hash, version=users.c.version + 1, updated_at=tx.now)
        )
        revoke_sessions(
            tx.conn, row.id, tx.now, keep_session_id=int(session_id) if session_id else None
        )
        tx.record(
            caller,
            {
                "action": AuditAction.USER_PASSWORD_CHANGED.value,
                "object_type": "user",
                "object_key": row.username,
                "evidence": {"other_sessions_revoked": True},
            },
        )


def rehash_if_needed(svc: Services, user_id: int, stored_hash: str, password: str) -> None:
    """Upgrade a password hash made with older Argon2 parameters (after a good login)."""
    if not needs_rehash(stored_hash):
        return
    with svc.change() as tx:
        tx.conn.execute(
            update(users)
            .where(users.c.id == user_id, users.c.password_hash == stored_hash)
            .values(password_hash=hash_password(password))
        )
