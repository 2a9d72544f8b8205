"""Webhook subscriptions: which events of a project go to which URL, signed with which secret.

Every write is planned as a typed change and passes the governance gate like any other
configuration write; a subscription changes no behavior's exposure or authority, so the
gate applies it at once for project administrators (``?plan=true`` answers so). Secrets
are drawn here, shown once (on creation and rotation) and never appear in a view or in the
audit log. A rotation keeps the previous secret signing for ``webhook_secret_overlap_hours``.
"""

from __future__ import annotations

import itertools
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update

from lockgate.control import lookup
from lockgate.control.base import Caller, Services, Transaction, iso
from lockgate.control.evidence.webhook_targets import check_target
from lockgate.control.governance import gate
from lockgate.control.governance.gate import Deferred
from lockgate.control.lookup import check_key, check_version
from lockgate.errors import Conflict, FieldProblem, InvalidInput, NotFound
from lockgate.events import signing
from lockgate.events.catalog import ALL_EVENTS, EventType
from lockgate.events.targets import TargetProblem
from lockgate.policy import postures
from lockgate.policy.access import Action
from lockgate.policy.changes import AuditAction, Change, ObjectType
from lockgate.policy.classify import Direction
from lockgate.store.outbox import ANY_ENVIRONMENT
from lockgate.store.tables import environments, webhook_routes, webhook_subscriptions

__all__ = [
    "FIELDS",
    "check_url",
    "create_webhook",
    "disable_gone",
    "delete_webhook",
    "get_webhook",
    "apply_now",
    "list_webhooks",
    "load_webhook",
    "plan_change",
    "rotate_secret",
    "update_webhook",
    "webhook_view",
]

FIELDS = ("url", "event_types", "environments", "description", "enabled")
EVENT_NAMES = frozenset(e.value for e in EventType) | {ALL_EVENTS}
_APPLY = postures.Verdict(postures.Outcome.APPLY, "webhooks-change-no-exposure", 0, Direction.NONE)


def webhook_view(row: Row[Any]) -> dict[str, Any]:
    """A subscription as the API shows it (never its secrets)."""
    return {
        "key": row.key,
        "url": row.url,
        "description": row.description,
        "event_types": row.event_types,
        "environments": row.environments,
        "enabled": row.enabled,
        "disabled_reason": row.disabled_reason,
        "previous_secret_expires_at": row.previous_secret_expires_at,
        "version": row.version,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "created_by": row.created_by,
    }


def load_webhook(conn: Connection, project: Row[Any], key: str) -> Row[Any]:
    row = conn.execute(
        select(webhook_subscriptions).where(
            webhook_subscriptions.c.project_id == project.id, webhook_subscriptions.c.key == key
        )
    ).first()
    if row is None:
        raise NotFound(f"webhook {key!r} not found in project {project.key!r}")
    return row


def check_url(svc: Services, url: str | None) -> None:
    """Refuse a target lockgate would not call (422 on ``url``): resolved before the write
    transaction, so that a slow name server never holds the write lock."""
    if url is None:
        return
    try:
        check_target(url, allow_private=svc.webhooks.allow_private_targets)
    except TargetProblem as exc:
        raise InvalidInput("invalid webhook target", [FieldProblem("url", str(exc))]) from None


def _check_fields(conn: Any, project: Row[Any], fields: dict[str, Any]) -> dict[str, Any]:
    """Refuse bad fields naming them; the fields with event types and environments sorted."""
    problems: list[FieldProblem] = []
    types = fields["event_types"]
    if not types:
        problems.append(FieldProblem("event_types", "name at least one event type, or '*'"))
    for index, name in enumerate(types):
        if name not in EVENT_NAMES:
            problems.append(FieldProblem(f"event_types[{index}]", f"unknown event type {name!r}"))
    known = set(
        conn.execute(select(environments.c.key).where(environments.c.project_id == project.id))
        .scalars()
        .all()
    )
    for index, name in enumerate(fields["environments"]):
        if name not in known:
            problems.append(FieldProblem(f"environments[{index}]", f"no environment {name!r}"))
    if problems:
        raise InvalidInput("invalid webhook subscription", problems)
    return fields | {
        "event_types": sorted(set(types)),
        "environments": sorted(set(fields["environments"])),
    }


def _route(tx: Transaction, subscription_id: int, fields: dict[str, Any]) -> None:
    """Rewrite the subscription's routes (event type x environment) from its fields."""
    tx.conn.execute(
        delete(webhook_routes).where(webhook_routes.c.subscription_id == subscription_id)
    )
    envs = fields["environments"] or [ANY_ENVIRONMENT]
    tx.conn.execute(
        insert(webhook_routes),
        [
            {"subscription_id": subscription_id, "event_type": t, "environment": e}
            for t, e in itertools.product(fields["event_types"], envs)
        ],
    )


def plan_change(
    caller: Caller,
    action: AuditAction,
    project_key: str,
    key: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    base_version: int | None,
    reason: str,
) -> Change:
    return Change(
        action=action,
        object_type=ObjectType.WEBHOOK,
        project=project_key,
        object_key=key,
        before=before,
        after=after,
        base_version=base_version,
        reason=reason,
        actor_id=caller.actor_id,
        actor_name=caller.actor_name,
    )


def apply_now(
    tx: Transaction, caller: Caller, project: Row[Any], change: Change, **extra: Any
) -> None:
    """Pass the gate (which applies webhook changes at once) and audit ``change``."""
    gate.govern(tx, caller, project, change, _APPLY, environment_ids=[])
    _record(tx, caller, change, **extra)


def _record(tx: Transaction, caller: Caller, change: Change, **extra: Any) -> None:
    tx.record(
        caller,
        {
            "action": change.action.value,
            "object_type": ObjectType.WEBHOOK.value,
            "object_key": change.object_key,
            "project": change.project,
            "before": None if change.before is None else dict(change.before),
            "after": None if change.after is None else dict(change.after),
            "reason": change.reason,
            "evidence": {"policy": _APPLY.document()},
            **extra,
        },
    )


def create_webhook(
    svc: Services,
    caller: Caller,
    project_key: str,
    values: dict[str, Any],
    reason: str = "",
    *,
    plan: bool = False,
) -> dict[str, Any] | Deferred:
    """A new subscription; the answer carries its ``secret``, shown this once."""
    key = values["key"]
    check_key(key)
    check_url(svc, values["url"])
    with svc.change() as tx:
        project = caller.project(tx.conn, project_key, Action.ADMIN_PROJECT)
        fields = _check_fields(
            tx.conn,
            project,
            {
                "url": values["url"],
                "event_types": list(values.get("event_types") or []),
                "environments": list(values.get("environments") or []),
                "description": values.get("description", ""),
                "enabled": bool(values.get("enabled", True)),
            },
        )
        if tx.conn.execute(
            select(webhook_subscriptions.c.id).where(
                webhook_subscriptions.c.project_id == project.id,
                webhook_subscriptions.c.key == key,
            )
        ).first():
            raise Conflict(f"webhook {key!r} already exists in project {project_key!r}")
        change = plan_change(
            caller, AuditAction.WEBHOOK_CREATED, project_key, key, None, fields, None, reason
        )
        deferred = gate.govern(tx, caller, project, change, _APPLY, environment_ids=[], plan=plan)
        if deferred is not None:
            return deferred
        secret = signing.make_secret(secrets.token_bytes(signing.SECRET_BYTES))
        result = tx.conn.execute(
            insert(webhook_subscriptions).values(
                project_id=project.id,
                key=key,
                secret=secret,
                disabled_reason="",
                version=1,
                created_at=tx.now,
                updated_at=tx.now,
                created_by=caller.actor_name,
                **fields,
            )
        )
        _route(tx, int(result.inserted_primary_key[0]), fields)  # type: ignore[index]
        view = webhook_view(load_webhook(tx.conn, project, key))
        _record(tx, caller, change)
    return view | {"secret": secret}


def list_webhooks(svc: Services, caller: Caller, project_key: str) -> list[dict[str, Any]]:
    with svc.view() as conn:
        project = caller.project(conn, project_key, Action.ADMIN_PROJECT)
        rows = conn.execute(
            select(webhook_subscriptions)
            .where(webhook_subscriptions.c.project_id == project.id)
            .order_by(webhook_subscriptions.c.key)
        ).all()
    return [webhook_view(r) for r in rows]


def get_webhook(svc: Services, caller: Caller, project_key: str, key: str) -> dict[str, Any]:
    with svc.view() as conn:
        project = caller.project(conn, project_key, Action.ADMIN_PROJECT)
        return webhook_view(load_webhook(conn, project, key))


def update_webhook(
    svc: Services,
    caller: Caller,
    project_key: str,
    key: str,
    changes: dict[str, Any],
    expected_version: int | None,
    reason: str = "",
    *,
    plan: bool = False,
) -> dict[str, Any] | Deferred:
    """Change some fields; enabling a disabled subscription clears why it was disabled."""
    check_url(svc, changes.get("url"))
    with svc.change() as tx:
        project = caller.project(tx.conn, project_key, Action.ADMIN_PROJECT)
        row = load_webhook(tx.conn, project, key)
        check_version(row.version, expected_version, f"webhook {key!r}")
        before = {name: getattr(row, name) for name in FIELDS}
        merged = before | {k: v for k, v in changes.items() if k in FIELDS and v is not None}
        after = _check_fields(tx.conn, project, merged)
        if after == before:
            return webhook_view(row)
        change = plan_change(
            caller,
            AuditAction.WEBHOOK_UPDATED,
            project_key,
            key,
            before,
            after,
            row.version,
            reason,
        )
        deferred = gate.govern(tx, caller, project, change, _APPLY, environment_ids=[], plan=plan)
        if deferred is not None:
            return deferred
        extra = {"disabled_reason": ""} if after["enabled"] and not row.enabled else {}
        tx.conn.execute(
            update(webhook_subscriptions)
            .where(webhook_subscriptions.c.id == row.id)
            .values(**after, **extra, version=row.version + 1, updated_at=tx.now)
        )
        _route(tx, row.id, after)
        view = webhook_view(load_webhook(tx.conn, project, key))
        _record(tx, caller, change)
    return view


def delete_webhook(
    svc: Services,
    caller: Caller,
    project_key: str,
    key: str,
    expected_version: int | None,
    reason: str = "",
) -> None:
    """Delete a subscription with its routes and every delivery of it."""
    from lockgate.store.tables import webhook_deliveries

    with svc.change() as tx:
        project = caller.project(tx.conn, project_key, Action.ADMIN_PROJECT)
        row = load_webhook(tx.conn, project, key)
        check_version(row.version, expected_version, f"webhook {key!r}")
        before = {name: getattr(row, name) for name in FIELDS}
        change = plan_change(
            caller, AuditAction.WEBHOOK_DELETED, project_key, key, before, None, row.version, reason
        )
        gate.govern(tx, caller, project, change, _APPLY, environment_ids=[])
        tx.conn.execute(
            delete(webhook_deliveries).where(webhook_deliveries.c.subscription_id == row.id)
        )
        tx.conn.execute(delete(webhook_routes).where(webhook_routes.c.subscription_id == row.id))
        tx.conn.execute(delete(webhook_subscriptions).where(webhook_subscriptions.c.id == row.id))
        _record(tx, caller, change)


def rotate_secret(
    svc: Services, caller: Caller, project_key: str, key: str, reason: str = ""
) -> dict[str, Any]:
    """A new secret (shown once); the current one keeps signing until the overlap ends."""
    with svc.change() as tx:
        project = caller.project(tx.conn, project_key, Action.ADMIN_PROJECT)
        row = load_webhook(tx.conn, project, key)
        overlap = timedelta(seconds=svc.webhooks.secret_overlap_seconds)
        expires = iso(datetime.fromisoformat(tx.now.replace("Z", "+00:00")) + overlap)
        change = plan_change(
            caller,
            AuditAction.WEBHOOK_SECRET_ROTATED,
            project_key,
            key,
            {"previous_secret_expires_at": row.previous_secret_expires_at},
            {"previous_secret_expires_at": expires},
            row.version,
            reason,
        )
        gate.govern(tx, caller, project, change, _APPLY, environment_ids=[])
        secret = signing.make_secret(secrets.token_bytes(signing.SECRET_BYTES))
        tx.conn.execute(
            update(webhook_subscriptions)
            .where(webhook_subscriptions.c.id == row.id)
            .values(
                secret=secret,
                previous_secret=row.secret,
                previous_secret_expires_at=expires,
                version=row.version + 1,
                updated_at=tx.now,
            )
        )
        view = webhook_view(load_webhook(tx.conn, project, key))
        _record(tx, caller, change)
    return view | {"secret": secret}


def disable_gone(tx: Transaction, caller: Caller, subscription_id: int, why: str) -> None:
    """Disable a subscription whose endpoint answered ``410 Gone`` (a system actor's change,
    audited as ``webhook:disabled``)."""
    from lockgate.store.tables import projects

    row = tx.conn.execute(
        select(webhook_subscriptions, projects.c.key.label("project_key"))
        .join(projects, projects.c.id == webhook_subscriptions.c.project_id)
        .where(webhook_subscriptions.c.id == subscription_id)
    ).first()
    if row is None or not row.enabled:
        return
    change = plan_change(
        caller,
        AuditAction.WEBHOOK_DISABLED,
        row.project_key,
        row.key,
        {"enabled": True},
        {"enabled": False, "disabled_reason": why},
        row.version,
        why,
    )
    tx.conn.execute(
        update(webhook_subscriptions)
        .where(webhook_subscriptions.c.id == row.id)
        .values(enabled=False, disabled_reason=why, version=row.version + 1, updated_at=tx.now)
    )
    apply_now(tx, caller, lookup.project(tx.conn, row.project_key), change)
