"""The webhook outbox, written on the change's write path.

An audited change whose action makes an event (:func:`lockgate.events.catalog.
event_for_action`) adds one ``webhook_deliveries`` row per enabled subscription of its
project that routes that event type and environment — in the same statement as the audit
entry on PostgreSQL (a data-modifying CTE: no extra round trip), in the next statement on
SQLite. When nobody subscribes, the statement inserts nothing. The payload is built when it
is sent, from the audit entry the row points at (``audit_seq``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Integer, String, bindparam, cast, insert, literal_column, or_, select

from lockgate.events.catalog import EventType, event_for_action
from lockgate.store.tables import (
    projects,
    webhook_deliveries,
    webhook_routes,
    webhook_subscriptions,
)

__all__ = [
    "ANY_ENVIRONMENT",
    "audit_params",
    "event_id_for",
    "matching_subscriptions",
    "queue_emitted",
    "queue_global",
]

ANY_ENVIRONMENT = "*"
"""A route's environment that matches events of every environment (and project events)."""


def event_id_for(audit_id: str) -> str:
    """The event id (``webhook-id``) of the event an audit entry makes."""
    return "evt_" + audit_id.replace("-", "")


def audit_params(
    action: str, audit_id: str, seq: int, project: str | None, environment: str | None, ts: str
) -> dict[str, Any]:
    """Parameters of :data:`ENQUEUE_FOR_AUDIT` for one audit entry."""
    event = event_for_action(action)
    return {
        "ob_type": None if event is None else event.value,
        # No event (or no project): match no subscription at all.
        "ob_project": None if event is None else project,
        "ob_environment": environment or ANY_ENVIRONMENT,
        "ob_event_id": event_id_for(audit_id),
        "ob_seq": seq,
        "ob_created": ts,
    }


def _routed(event_type: Any, environment: Any) -> Any:
    return (
        select(webhook_routes.c.subscription_id)
        .where(
            webhook_routes.c.subscription_id == webhook_subscriptions.c.id,
            webhook_routes.c.event_type.in_([event_type, "*"]),
            or_(
                webhook_routes.c.environment == ANY_ENVIRONMENT,
                webhook_routes.c.environment == environment,
                environment == ANY_ENVIRONMENT,  # an event of the whole project
            ),
        )
        .exists()
    )


def matching_subscriptions(event_type: Any, project: Any, environment: Any) -> Any:
    """The enabled subscriptions of ``project`` (a key) routing this event: a select of ids."""
    project_id = select(projects.c.id).where(projects.c.key == project).scalar_subquery()
    return select(webhook_subscriptions.c.id).where(
        webhook_subscriptions.c.project_id == project_id,
        webhook_subscriptions.c.enabled.is_(True),
        _routed(event_type, environment),
    )


def _enqueue_for_audit() -> Any:
    event_type = cast(bindparam("ob_type"), String)
    created = cast(bindparam("ob_created"), String)
    rows = matching_subscriptions(
        event_type, cast(bindparam("ob_project"), String), cast(bindparam("ob_environment"), String)
    ).add_columns(
        cast(bindparam("ob_event_id"), String),
        event_type,
        cast(bindparam("ob_seq"), Integer),
        created,
        literal_column("'pending'"),
        literal_column("0"),
        created,
        literal_column("''"),
    )
    return insert(webhook_deliveries).from_select(
        [
            "subscription_id",
            "event_id",
            "event_type",
            "audit_seq",
            "created_at",
            "state",
            "attempts",
            "next_attempt_at",
            "last_error",
        ],
        rows,
    )


ENQUEUE_FOR_AUDIT = _enqueue_for_audit()
"""Insert the deliveries an audit entry makes (parameters: :func:`audit_params`)."""


def enqueue_cte() -> Any:
    """:data:`ENQUEUE_FOR_AUDIT` as a CTE for a PostgreSQL write statement."""
    return ENQUEUE_FOR_AUDIT.cte("enqueued")


def emitted_row(
    subscription_id: int, event: EventType, event_id: str, data: dict[str, Any], now: str
) -> dict[str, Any]:
    """A delivery row of an event emitted without an audit entry."""
    return {
        "subscription_id": subscription_id,
        "event_id": event_id,
        "event_type": event.value,
        "audit_seq": None,
        "data": data,
        "created_at": now,
        "state": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "last_error": "",
    }


def queue_emitted(
    conn: Any,
    event: EventType,
    project: str,
    environment: str | None,
    data: dict[str, Any],
    now: str,
) -> int:
    """One delivery row per enabled subscription of ``project`` routing ``event``, for an
    event no audit entry makes; how many were queued (0 when nobody subscribes)."""
    ids = (
        conn.execute(matching_subscriptions(event.value, project, environment or ANY_ENVIRONMENT))
        .scalars()
        .all()
    )
    return _queue_rows(
        conn, ids, event, {"project": project, "environment": environment, **data}, now
    )


def queue_global(conn: Any, event: EventType, data: dict[str, Any], now: str) -> int:
    """One delivery row per enabled subscription, of any project, that names ``event``
    (``*`` does not: a project's subscription to everything is about that project), for an
    event about the whole installation (``audit.checkpoint``: the audit chain is one for
    every project). How many were queued (0 when nobody subscribes)."""
    named = (
        select(webhook_routes.c.subscription_id)
        .where(
            webhook_routes.c.subscription_id == webhook_subscriptions.c.id,
            webhook_routes.c.event_type == event.value,
        )
        .exists()
    )
    ids = (
        conn.execute(
            select(webhook_subscriptions.c.id).where(
                webhook_subscriptions.c.enabled.is_(True), named
            )
        )
        .scalars()
        .all()
    )
    return _queue_rows(conn, ids, event, data, now)


def _queue_rows(
    conn: Any, ids: Sequence[int], event: EventType, body: dict[str, Any], now: str
) -> int:
    if not ids:
        return 0
    event_id = "evt_" + uuid.uuid4().hex
    conn.execute(
        insert(webhook_deliveries), [emitted_row(i, event, event_id, body, now) for i in ids]
    )
    return len(ids)
