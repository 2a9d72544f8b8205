"""The webhook outbox: claim due deliveries, record what each attempt got, emit, replay.

Ordering: per subscription, deliveries go out in the order their events were committed
(the outbox ``id``, allocated under the audit chain's write lock). A delivery is claimed only
when it is the subscription's oldest pending one, so a later event is never sent before an
earlier one is delivered or has failed for good. Subscriptions do not wait for each other.

Claims are leases: a sender marks the rows it sends with ``lease_until`` (on PostgreSQL it
selects them ``FOR UPDATE SKIP LOCKED``), so replicas never send the same attempt twice; a
sender that dies leaves its lease to expire, and the delivery is sent again (at least once:
receivers deduplicate on ``webhook-id``).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, func, or_, select, update

from lockgate.control import lookup
from lockgate.control.base import Caller, Services, Transaction, iso, system_caller
from lockgate.control.evidence import webhooks
from lockgate.errors import Conflict, NotFound
from lockgate.events import payloads
from lockgate.events.catalog import EMITTED_ONLY, EventType
from lockgate.events.schedule import Outcome, judge
from lockgate.policy.access import Action
from lockgate.policy.changes import AuditAction
from lockgate.store import audit
from lockgate.store.outbox import queue_emitted
from lockgate.store.tables import audit_log, webhook_deliveries, webhook_subscriptions

__all__ = [
    "Claimed",
    "claim_due",
    "delivery_view",
    "emit",
    "list_deliveries",
    "record_attempt",
    "release_stale_leases",
    "replay",
]

SENDER = "webhook-delivery"
"""The system actor of what the sender changes (disabling a subscription that is gone)."""

D = webhook_deliveries
S = webhook_subscriptions


@dataclass(frozen=True)
class Claimed:
    """One delivery leased for one attempt, with everything the sender needs."""

    id: int
    subscription_id: int
    url: str
    secrets: tuple[str, ...]  # newest first
    event_id: str
    body: bytes
    attempts: int  # before this attempt
    created_at: str


def _parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def _after(now: str, seconds: float) -> str:
    return iso(_parse(now) + timedelta(seconds=seconds))


def emit(
    tx: Transaction,
    event: EventType,
    project: str,
    data: dict[str, Any],
    *,
    environment: str | None = None,
) -> int:
    """Queue ``event`` for every subscription of ``project`` routing it, in ``tx``.

    For events that no audit entry makes (``guardrail.breached``, ``automatic.action``,
    ``cleanup.due``): their producers call this inside the transaction of the change that
    made them. Returns how many deliveries were queued (0 when nobody subscribes).
    """
    if event not in EMITTED_ONLY:
        raise ValueError(f"{event.value} is made by its audit entry; it is not emitted")
    queued = queue_emitted(tx.conn, event, project, environment, data, tx.now)
    if queued:
        tx.emitted = True
    return queued


def _due(now: str, limit: int, postgres: bool) -> Any:
    earlier = D.alias("earlier")
    oldest = (
        select(func.min(earlier.c.id))
        .where(earlier.c.subscription_id == D.c.subscription_id, earlier.c.state == "pending")
        .scalar_subquery()
    )
    query = (
        select(D, S.c.url, S.c.secret, S.c.previous_secret, S.c.previous_secret_expires_at)
        .join(S, S.c.id == D.c.subscription_id)
        .where(
            S.c.enabled.is_(True),
            D.c.state == "pending",
            D.c.next_attempt_at <= now,
            or_(D.c.lease_until.is_(None), D.c.lease_until <= now),
            D.c.id == oldest,
        )
        .order_by(D.c.id)
        .limit(limit)
    )
    return query.with_for_update(of=D, skip_locked=True) if postgres else query


def _bodies(conn: Any, rows: Sequence[Row[Any]]) -> dict[int, bytes]:
    seqs = [r.audit_seq for r in rows if r.audit_seq is not None]
    entries = {
        e.seq: e
        for e in map(
            audit.row_to_entry,
            (r._mapping for r in conn.execute(select(audit_log).where(audit_log.c.seq.in_(seqs)))),
        )
    }
    bodies = {}
    for row in rows:
        if row.audit_seq is not None:
            entry = entries[row.audit_seq]
            document = payloads.payload(
                row.event_type, entry.ts, payloads.audit_data(entry.to_dict())
            )
        else:
            document = payloads.payload(row.event_type, row.created_at, row.data or {})
        bodies[row.id] = payloads.encode(document)
    return bodies


def release_stale_leases(svc: Services) -> int:
    """SQLite, at start: the server is the only sender, so a lease still held was held by a
    process that died mid-attempt; its deliveries are due again at once. (On PostgreSQL,
    other replicas may be sending: leases there run out by themselves.)"""
    if not svc.database.is_sqlite:
        return 0
    with svc.database.write() as conn:
        result = conn.execute(
            update(D)
            .where(D.c.state == "pending", D.c.lease_until.is_not(None))
            .values(lease_until=None)
        )
    return int(result.rowcount or 0)


def claim_due(svc: Services, *, limit: int = 20) -> list[Claimed]:
    """Lease the deliveries due now (each subscription's oldest pending one).

    The lease outlasts an attempt (connect, send and read, each within the timeout) and
    the recording of its answer.
    """
    lease = 3 * svc.webhooks.timeout_seconds + 10
    with svc.view() as conn:  # most looks find nothing: no write lock for them
        if conn.execute(_due(svc.now(), 1, postgres=False)).first() is None:
            return []
    with svc.database.write() as conn:
        now = svc.now()
        rows = conn.execute(_due(now, limit, conn.dialect.name == "postgresql")).all()
        if not rows:
            return []
        conn.execute(
            update(D).where(D.c.id.in_([r.id for r in rows])).values(lease_until=_after(now, lease))
        )
        bodies = _bodies(conn, rows)
    claimed = []
    for row in rows:
        keys = [row.secret]
        expires = row.previous_secret_expires_at
        if row.previous_secret and expires is not None and expires > now:
            keys.append(row.previous_secret)
        claimed.append(
            Claimed(
                row.id,
                row.subscription_id,
                row.url,
                tuple(keys),
                row.event_id,
                bodies[row.id],
                row.attempts,
                row.created_at,
            )
        )
    return claimed


def record_attempt(
    svc: Services,
    claimed: Claimed,
    *,
    status: int | None,
    error: str = "",
    retry_after: float | None = None,
    fraction: float | None = None,
) -> Outcome:
    """Record one attempt's answer (``status``; ``None`` when there was none) and decide
    what comes next: delivered, another attempt later, failed, or gone (410)."""
    with svc.change() as tx:
        now = tx.now
        verdict = judge(
            svc.webhooks,
            status=status,
            attempts=claimed.attempts + 1,
            age_seconds=(_parse(now) - _parse(claimed.created_at)).total_seconds(),
            retry_after=retry_after,
            fraction=random.random() if fraction is None else fraction,  # noqa: S311 - jitter
        )
        values: dict[str, Any] = {
            "attempts": claimed.attempts + 1,
            "last_attempt_at": now,
            "last_status": status,
            "last_error": error[:2000],
            "lease_until": None,
        }
        if verdict.outcome is Outcome.RETRY:
            values["next_attempt_at"] = _after(now, verdict.delay)
        else:
            state = "delivered" if verdict.outcome is Outcome.DELIVERED else "failed"
            values |= {"state": state, "finished_at": now}
        tx.conn.execute(
            update(D).where(D.c.id == claimed.id, D.c.state == "pending").values(values)
        )
        if verdict.outcome is Outcome.GONE:
            why = f"the endpoint answered 410 Gone at {now}"
            webhooks.disable_gone(tx, system_caller(SENDER), claimed.subscription_id, why)
    return verdict.outcome


def delivery_view(row: Row[Any]) -> dict[str, Any]:
    return {
        "id": row.id,
        "event_id": row.event_id,
        "event_type": row.event_type,
        "audit_seq": row.audit_seq,
        "state": row.state,
        "attempts": row.attempts,
        "created_at": row.created_at,
        "next_attempt_at": row.next_attempt_at if row.state == "pending" else None,
        "last_attempt_at": row.last_attempt_at,
        "last_status": row.last_status,
        "last_error": row.last_error,
        "finished_at": row.finished_at,
    }


STATES = ("pending", "delivered", "failed")


def list_deliveries(
    svc: Services,
    caller: Caller,
    project_key: str,
    key: str,
    *,
    state: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> lookup.Page:
    """A subscription's deliveries, newest first (``state="failed"``: what to replay)."""
    limit, offset = lookup.page_args(limit, cursor)
    with svc.view() as conn:
        project = caller.project(conn, project_key, Action.ADMIN_PROJECT)
        row = webhooks.load_webhook(conn, project, key)
        where = [D.c.subscription_id == row.id]
        if state is not None:
            where.append(D.c.state == state)
        total = conn.execute(select(func.count()).select_from(D).where(*where)).scalar_one()
        rows = conn.execute(
            select(D).where(*where).order_by(D.c.id.desc()).offset(offset).limit(limit)
        ).all()
    return lookup.make_page([delivery_view(r) for r in rows], limit, offset, total)


def replay(
    svc: Services,
    caller: Caller,
    project_key: str,
    key: str,
    *,
    delivery_id: int | None = None,
    reason: str = "",
) -> dict[str, Any]:
    """Queue failed deliveries again (one, or every failed one of the subscription) with
    fresh attempts; they keep their event id and their place in the subscription's order."""
    with svc.change() as tx:
        project = caller.project(tx.conn, project_key, Action.ADMIN_PROJECT)
        row = webhooks.load_webhook(tx.conn, project, key)
        where = [D.c.subscription_id == row.id, D.c.state == "failed"]
        if delivery_id is not None:
            found = tx.conn.execute(
                select(D.c.state).where(D.c.id == delivery_id, D.c.subscription_id == row.id)
            ).first()
            if found is None:
                raise NotFound(f"delivery {delivery_id} not found for webhook {key!r}")
            if found.state != "failed":
                raise Conflict(f"delivery {delivery_id} is {found.state}; only failed ones replay")
            where.append(D.c.id == delivery_id)
        ids = tx.conn.execute(select(D.c.id).where(*where).order_by(D.c.id)).scalars().all()
        if ids:
            tx.conn.execute(
                update(D)
                .where(D.c.id.in_(ids))
                .values(
                    state="pending",
                    attempts=0,
                    next_attempt_at=tx.now,
                    lease_until=None,
                    finished_at=None,
                )
            )
            tx.emitted = True
            change = webhooks.plan_change(
                caller,
                AuditAction.WEBHOOK_REPLAYED,
                project_key,
                key,
                None,
                {"deliveries": list(ids)},
                row.version,
                reason,
            )
            webhooks.apply_now(tx, caller, project, change, refs={"deliveries": list(ids)})
    return {"replayed": len(ids), "deliveries": list(ids)}
