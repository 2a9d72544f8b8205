"""Test helpers: principals inserted straight into the store, for authorization tests.

Users, role grants and API tokens are written with SQLAlchemy (no audit entries), so
that tests can act as viewers, editors or narrowed tokens without going through the
identity API.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, insert, select

from lockgate.control.base import Services
from lockgate.control.identity import credentials
from lockgate.store.tables import environments, projects, role_grants, users

__all__ = ["GrantSpec", "add_principal", "add_token", "bearer"]

GrantSpec = tuple[str, str] | tuple[str, str, str]
"""``(project key, role)`` or ``(project key, role, environment key)``."""


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _project_id(conn: Connection, key: str) -> int:
    return int(conn.execute(select(projects.c.id).where(projects.c.key == key)).scalar_one())


def _insert_user(conn: Connection, username: str, is_admin: bool, now: str) -> int:
    result = conn.execute(
        insert(users).values(
            username=username,
            display_name=username,
            kind="human",
            password_hash=None,
            is_admin=is_admin,
            disabled=False,
            version=1,
            created_at=now,
            updated_at=now,
            created_by="test",
        )
    )
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def _insert_grant(conn: Connection, user_id: int, grant: GrantSpec, now: str) -> None:
    project_id = _project_id(conn, grant[0])
    environment_id = None
    if len(grant) == 3:
        environment_id = conn.execute(
            select(environments.c.id).where(
                environments.c.project_id == project_id, environments.c.key == grant[2]
            )
        ).scalar_one()
    conn.execute(
        insert(role_grants).values(
            user_id=user_id,
            project_id=project_id,
            environment_id=environment_id,
            role=grant[1],
            created_at=now,
            created_by="test",
        )
    )


def add_principal(
    services: Services,
    username: str,
    grants: Iterable[GrantSpec] = (),
    *,
    is_admin: bool = False,
    token_project: str | None = None,
    max_role: str | None = None,
    token_kind: str = "standard",
) -> str:
    """Create a user with ``grants`` and an API token (optionally narrowed); its value."""
    now = services.now()
    issued = credentials.new_secret("lgt")
    with services.database.write() as conn:
        user_id = _insert_user(conn, username, is_admin, now)
        for grant in grants:
            _insert_grant(conn, user_id, grant, now)
        credentials.insert_token(
            conn,
            user_id=user_id,
            name=f"{username} test token",
            prefix=issued.prefix,
            secret_hash=issued.secret_hash,
            now=now,
            created_by="test",
            project_id=None if token_project is None else _project_id(conn, token_project),
            max_role=max_role,
            kind=token_kind,
        )
    return issued.value


def add_token(services: Services, username: str, *, kind: str = "standard") -> str:
    """Another API token for an existing user; its value."""
    issued = credentials.new_secret("lgt")
    with services.database.write() as conn:
        user_id = conn.execute(select(users.c.id).where(users.c.username == username)).scalar_one()
        credentials.insert_token(
            conn,
            user_id=user_id,
            name=f"{username} {kind} token",
            prefix=issued.prefix,
            secret_hash=issued.secret_hash,
            now=services.now(),
            created_by="test",
            kind=kind,
        )
    return issued.value
