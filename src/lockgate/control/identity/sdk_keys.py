"""SDK keys, per environment: server keys (``lgs_…``) receive rulesets for local
evaluation, client keys (``lgc_…``) only evaluated values of client-visible flags.

An environment holds at most two active keys of each kind, so that a key can be rotated
without downtime: create the new key, deploy it, revoke the old one. Values are shown
once; only their SHA-256 hash is stored. Managing keys needs the environment's admin
role. SDK keys authenticate only the delivery endpoints
(:func:`authenticate_sdk_key`); the management API refuses them.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, func, insert, select, update

from lockgate.control import lookup
from lockgate.control.base import Caller, Services
from lockgate.control.identity import credentials
from lockgate.errors import Conflict, FieldProblem, InvalidInput, NotFound, Unauthenticated
from lockgate.policy.access import Action
from lockgate.policy.changes import AuditAction
from lockgate.store.tables import environments, sdk_keys

__all__ = [
    "KIND_PREFIX",
    "MAX_ACTIVE_PER_KIND",
    "SdkKeyPrincipal",
    "authenticate_sdk_key",
    "create_sdk_key",
    "list_sdk_keys",
    "revoke_sdk_key",
    "touch_sdk_key",
]

KIND_PREFIX = {"server": "lgs", "client": "lgc"}
MAX_ACTIVE_PER_KIND = 2
PREFIX_PATTERN = re.compile(r"^[A-Za-z0-9]{1,32}$")


@dataclass(frozen=True)
class SdkKeyPrincipal:
    """What an SDK key may read: one environment's data, as a server or client SDK."""

    environment_id: int
    project_id: int
    kind: str  # server | client
    key_id: int


def sdk_key_view(row: Row[Any]) -> dict[str, Any]:
    return {
        "prefix": row.prefix,
        "kind": row.kind,
        "name": row.name,
        "created_at": row.created_at,
        "created_by": row.created_by,
        "last_used_at": row.last_used_at,
        "revoked": row.revoked_at is not None,
        "revoked_at": row.revoked_at,
    }


def _scope(
    conn: Connection, caller: Caller, project_key: str, env_key: str, *, lock: bool = False
) -> tuple[Row[Any], Row[Any]]:
    project = lookup.project(conn, project_key)
    env = lookup.environment(conn, project, env_key)
    caller.authorize(Action.ADMIN_ENVIRONMENT, project.id, env.id, what=f"project {project_key!r}")
    if lock:  # serialises key creation per environment (PostgreSQL; SQLite writes are serial)
        conn.execute(select(environments.c.id).where(environments.c.id == env.id).with_for_update())
    return project, env


def list_sdk_keys(
    svc: Services, caller: Caller, project_key: str, env_key: str
) -> list[dict[str, Any]]:
    with svc.view() as conn:
        _, env = _scope(conn, caller, project_key, env_key)
        rows = conn.execute(
            select(sdk_keys)
            .where(sdk_keys.c.environment_id == env.id)
            .order_by(sdk_keys.c.created_at, sdk_keys.c.id)
        ).all()
    return [sdk_key_view(r) for r in rows]


def _check_room(conn: Connection, env: Row[Any], kind: str) -> None:
    active = conn.execute(
        select(func.count())
        .select_from(sdk_keys)
        .where(
            sdk_keys.c.environment_id == env.id,
            sdk_keys.c.kind == kind,
            sdk_keys.c.revoked_at.is_(None),
        )
    ).scalar_one()
    if active >= MAX_ACTIVE_PER_KIND:
        raise Conflict(
            f"environment {env.key!r} already has {active} active {kind} keys, the most "
            f"allowed (two, so that a key can be rotated without downtime); revoke one "
            f"before creating another"
        )


def create_sdk_key(
    svc: Services,
    caller: Caller,
    project_key: str,
    env_key: str,
    *,
    kind: str,
    name: str = "",
    reason: str = "",
) -> dict[str, Any]:
    """Create a key; the result's ``key`` is the only time the value is shown."""
    if kind not in KIND_PREFIX:
        raise InvalidInput("bad kind", [FieldProblem("kind", "must be server or client")])
    name = name.strip() or f"{kind} key"
    with svc.change() as tx:
        _, env = _scope(tx.conn, caller, project_key, env_key, lock=True)
        _check_room(tx.conn, env, kind)
        issued = credentials.new_secret(KIND_PREFIX[kind])
        tx.conn.execute(
            insert(sdk_keys).values(
                environment_id=env.id,
                kind=kind,
                name=name,
                prefix=issued.prefix,
                secret_hash=issued.secret_hash,
                created_at=tx.now,
                created_by=caller.actor_name,
            )
        )
        view = sdk_key_view(_find(tx.conn, env, issued.prefix))
        tx.record(
            caller,
            {
                "action": AuditAction.SDK_KEY_CREATED.value,
                "object_type": "sdk_key",
                "object_key": issued.prefix,
                "project": project_key,
                "environment": env_key,
                "after": view,
                "reason": reason,
            },
        )
    return view | {"key": issued.value}


def _find(conn: Connection, env: Row[Any], prefix: str) -> Row[Any]:
    if not PREFIX_PATTERN.match(prefix):
        raise NotFound(f"SDK key {prefix!r} not found in environment {env.key!r}")
    row = conn.execute(
        select(sdk_keys).where(sdk_keys.c.environment_id == env.id, sdk_keys.c.prefix == prefix)
    ).first()
    if row is None:
        raise NotFound(f"SDK key {prefix!r} not found in environment {env.key!r}")
    return row


def revoke_sdk_key(
    svc: Services, caller: Caller, project_key: str, env_key: str, prefix: str, reason: str = ""
) -> dict[str, Any]:
    """Revoke a key at once (idempotent)."""
    with svc.change() as tx:
        _, env = _scope(tx.conn, caller, project_key, env_key)
        row = _find(tx.conn, env, prefix)
        before = sdk_key_view(row)
        if row.revoked_at is not None:
            return before
        tx.conn.execute(update(sdk_keys).where(sdk_keys.c.id == row.id).values(revoked_at=tx.now))
        after = sdk_key_view(_find(tx.conn, env, prefix))
        tx.record(
            caller,
            {
                "action": AuditAction.SDK_KEY_REVOKED.value,
                "object_type": "sdk_key",
                "object_key": prefix,
                "project": project_key,
                "environment": env_key,
                "before": before,
                "after": after,
                "reason": reason,
            },
        )
    return after


def authenticate_sdk_key(conn: Connection, value: str, now: str) -> SdkKeyPrincipal:
    """The environment an SDK key reads; raises :class:`Unauthenticated` otherwise.

    ``now`` is accepted for symmetry with token authentication (SDK keys do not expire);
    call :func:`touch_sdk_key` in a write transaction to record use.
    """
    parsed = credentials.parse_secret(value)
    if parsed is None or parsed[0] not in KIND_PREFIX.values():
        raise Unauthenticated("send a server or client SDK key (lgs_… or lgc_…)")
    row = conn.execute(
        select(sdk_keys, environments.c.project_id)
        .join(environments, environments.c.id == sdk_keys.c.environment_id)
        .where(sdk_keys.c.prefix == parsed[1])
    ).first()
    if row is None or not hmac.compare_digest(row.secret_hash, credentials.hash_secret(value)):
        raise Unauthenticated("invalid SDK key")
    if row.revoked_at is not None:
        raise Unauthenticated("this SDK key has been revoked")
    if KIND_PREFIX[row.kind] != parsed[0]:
        raise Unauthenticated("invalid SDK key")
    return SdkKeyPrincipal(
        environment_id=row.environment_id, project_id=row.project_id, kind=row.kind, key_id=row.id
    )


def touch_sdk_key(conn: Connection, key_id: int, now: str) -> None:
    """Record the key's last use (at most about once a minute)."""
    conn.execute(
        update(sdk_keys)
        .where(sdk_keys.c.id == key_id)
        .where((sdk_keys.c.last_used_at.is_(None)) | (sdk_keys.c.last_used_at < now[:16]))
        .values(last_used_at=now)
    )
