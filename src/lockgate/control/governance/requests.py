"""Change requests: the exact change, its hash, and the approvals it waits for.

States: ``open`` → ``approved`` → ``applied``; or ``rejected``, ``cancelled``, ``expired``,
``conflicted``. The rules, each enforced here and tested by name:

* approvals come from distinct people holding ``approver`` in every environment the
  change expands (project-wide for project-level changes); the author never approves
  their own request, through a token neither; automation tokens never approve;
* any edit makes a new revision and voids the approvals of earlier ones (approvals are
  counted for the current revision and change hash only);
* one rejection blocks; requests expire (``change_request_ttl_days``);
* applying re-checks the target: if it moved since the proposal, ``409`` naming what
  changed, the request becomes ``conflicted`` and nothing is applied;
* an approved request may be scheduled to apply at a time, by the background job, and
  only if it is still approved and unconflicted.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Row,
    and_,
    func,
    insert,
    select,
    update,
)

from lockgate.control import lookup
from lockgate.control.base import Caller, Services, Transaction, iso
from lockgate.errors import (
    Conflict,
    FieldProblem,
    InvalidInput,
    NotFound,
    PermissionDenied,
    PolicyRefused,
)
from lockgate.policy.access import Action, Role, role_for
from lockgate.policy.changes import AuditAction, Change, ObjectType
from lockgate.store.tables import (
    change_request_events,
    change_requests,
    environments,
    flags,
    projects,
)

__all__ = [
    "PENDING_STATES",
    "STATES",
    "apply_due",
    "apply_request",
    "approve",
    "cancel",
    "comment",
    "expire_due",
    "get_request",
    "list_requests",
    "load_request",
    "reject",
    "request_diff",
    "request_view",
    "revise",
    "schedule",
]

STATES = ("open", "approved", "applied", "rejected", "cancelled", "expired", "conflicted")
PENDING_STATES = ("open", "approved")

Applier = Callable[[Transaction, Caller, Change, dict[str, Any]], dict[str, Any]]


def _appliers() -> dict[AuditAction, Applier]:
    """How each kind of change is applied once approved (the same code as a direct write)."""
    from lockgate.control.agents import tools
    from lockgate.control.configuration import contracts, flags, projects, segments
    from lockgate.control.guardrails import definitions as guardrails

    return {
        AuditAction.TOOL_REGISTERED: tools.apply_tool_change,
        AuditAction.TOOL_UPDATED: tools.apply_tool_change,
        AuditAction.TOOL_POLICY_UPDATED: tools.apply_policy_change,
        AuditAction.GUARDRAIL_UPDATED: guardrails.apply_guardrail_change,
        AuditAction.GUARDRAIL_DELETED: guardrails.apply_guardrail_change,
        AuditAction.ROLLOUT_PLAN_CREATED: guardrails.apply_plan_change,
        AuditAction.ROLLOUT_PLAN_UPDATED: guardrails.apply_plan_change,
        AuditAction.ROLLOUT_PLAN_RESUMED: guardrails.apply_plan_change,
        AuditAction.CONTRACT_APPLIED: contracts.apply_contract_change,
        AuditAction.FLAG_CONFIGURED: flags.apply_config_change,
        AuditAction.FLAG_REVERTED: flags.apply_config_change,
        AuditAction.FLAG_RESTORED: flags.apply_config_change,
        AuditAction.FLAG_EXCLUSION_LIFTED: flags.apply_config_change,
        AuditAction.FLAG_UPDATED: flags.apply_definition_change,
        AuditAction.FLAG_ARCHIVED: flags.apply_definition_change,
        AuditAction.SEGMENT_UPDATED: segments.apply_segment_change,
        AuditAction.POSTURE_UPDATED: projects.apply_posture_change,
        AuditAction.ENVIRONMENT_UPDATED: projects.apply_environment_change,
    }


def _revisers() -> dict[AuditAction, Callable[..., Any]]:
    from lockgate.control.configuration import flags

    return {
        AuditAction.FLAG_CONFIGURED: flags.replan_config_change,
        AuditAction.FLAG_REVERTED: flags.replan_config_change,
    }


def load_request(conn: Connection, request_id: int) -> Row[Any]:
    row = conn.execute(
        select(change_requests, projects.c.key.label("project_key"))
        .join(projects, projects.c.id == change_requests.c.project_id)
        .where(change_requests.c.id == request_id)
    ).first()
    if row is None:
        raise NotFound(f"change request {request_id} not found")
    return row


def _events(conn: Connection, request_id: int) -> list[Row[Any]]:
    return list(
        conn.execute(
            select(change_request_events)
            .where(change_request_events.c.change_request_id == request_id)
            .order_by(change_request_events.c.id)
        ).all()
    )


def _current_approvals(row: Row[Any], events: list[Row[Any]]) -> list[Row[Any]]:
    return [
        e
        for e in events
        if e.kind == "approval" and e.revision == row.revision and e.change_hash == row.change_hash
    ]


def request_view(conn: Connection, row: Row[Any]) -> dict[str, Any]:
    events = _events(conn, row.id)
    approvals = _current_approvals(row, events)
    return {
        "id": row.id,
        "project": row.project_key,
        "environment": row.environment,
        "object_type": row.object_type,
        "object_key": row.object_key,
        "action": row.action,
        "title": row.title,
        "state": row.state,
        "revision": row.revision,
        "approvals_required": row.approvals_required,
        "approvals": [_event_view(e) for e in approvals],
        "rejections": [_event_view(e) for e in events if e.kind == "rejection"],
        "comments": [_event_view(e) for e in events if e.kind == "comment"],
        "voided_approvals": [
            _event_view(e) for e in events if e.kind == "approval" and e not in approvals
        ],
        "author": row.author_name,
        "change": row.change,
        "change_hash": row.change_hash,
        "policy": row.policy,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "expires_at": row.expires_at,
        "apply_at": row.apply_at,
        "decided_at": row.decided_at,
        "applied_audit_seq": row.applied_audit_seq,
        "version": row.version,
    }


def _event_view(e: Row[Any]) -> dict[str, Any]:
    return {
        "by": e.actor_name,
        "revision": e.revision,
        "change_hash": e.change_hash,
        "body": e.body,
        "at": e.created_at,
    }


def _visible(conn: Connection, caller: Caller, request_id: int) -> Row[Any]:
    """The request, once the caller may read its project (hidden projects answer 404)."""
    row = load_request(conn, request_id)
    caller.may_read(row.project_id, f"change request {request_id}")
    return row


def list_requests(
    svc: Services,
    caller: Caller,
    project_key: str,
    *,
    state: str | None = None,
    environment: str | None = None,
    behavior_kind: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> lookup.Page:
    if state is not None and state not in STATES:
        raise InvalidInput("bad state", [FieldProblem("state", f"one of {', '.join(STATES)}")])
    limit, offset = lookup.page_args(limit, cursor)
    with svc.view() as conn:
        project = caller.project(conn, project_key, Action.READ)
        where = [change_requests.c.project_id == project.id]
        if state is not None:
            where.append(change_requests.c.state == state)
        if environment is not None:
            lookup.environment(conn, project, environment)
            where.append(change_requests.c.environment == environment)
        if behavior_kind is not None:
            c = change_requests.c
            of_kind = lookup.behavior_of_kind(behavior_kind, c.object_key, c.project_id)
            where.extend([c.object_type == "flag", of_kind])
        total = conn.execute(
            select(func.count()).select_from(change_requests).where(and_(*where))
        ).scalar_one()
        ids = conn.execute(
            select(change_requests.c.id)
            .where(and_(*where))
            .order_by(change_requests.c.id.desc())
            .offset(offset)
            .limit(limit)
        ).all()
        items = [request_view(conn, load_request(conn, r.id)) for r in ids]
    return lookup.make_page(items, limit, offset, total)


def get_request(svc: Services, caller: Caller, request_id: int) -> dict[str, Any]:
    with svc.view() as conn:
        return request_view(conn, _visible(conn, caller, request_id))


def request_diff(svc: Services, caller: Caller, request_id: int) -> dict[str, Any]:
    """Field by field: what the change would set, against what it was proposed over."""
    with svc.view() as conn:
        row = _visible(conn, caller, request_id)
    change = Change.from_document(row.change)
    before = dict(change.before or {})
    after = dict(change.after or {})
    return {
        "id": row.id,
        "revision": row.revision,
        "change_hash": row.change_hash,
        "target": change.target,
        "fields": [
            {"field": f, "before": before.get(f), "after": after.get(f)}
            for f in change.changed_fields()
        ],
    }


def _pending(row: Row[Any], now: str) -> None:
    if row.state not in PENDING_STATES:
        raise Conflict(f"change request {row.id} is {row.state}", state=row.state)
    if row.expires_at <= now:
        raise Conflict(f"change request {row.id} has expired", state="expired")


def _check_hash(row: Row[Any], change_hash: str | None) -> None:
    if change_hash is not None and change_hash != row.change_hash:
        raise Conflict(
            f"change request {row.id} was edited (now revision {row.revision}); "
            "review the new change and decide again",
            revision=row.revision,
            change_hash=row.change_hash,
        )


def _require_approver(tx: Transaction, caller: Caller, row: Row[Any], verb: str) -> None:
    principal = caller.principal
    if principal is None:
        raise PermissionDenied(f"a system actor cannot {verb} change requests")
    if principal.is_automation:
        raise PermissionDenied(f"automation tokens never {verb} change requests")
    if row.author_user_id is not None and principal.user_id == row.author_user_id:
        raise PermissionDenied(f"the author of a change request cannot {verb} it")
    scopes = list(row.environment_ids) or [None]
    for environment_id in scopes:
        role = role_for(principal, row.project_id, environment_id)
        if role is None or role.rank < Role.APPROVER.rank:
            where = "the project"
            if environment_id is not None:
                env_key = tx.conn.execute(
                    select(environments.c.key).where(environments.c.id == environment_id)
                ).scalar_one()
                where = f"environment {env_key!r}"
            raise PermissionDenied(f"only an approver in {where} may {verb} this change request")


def _add_event(tx: Transaction, caller: Caller, row: Row[Any], kind: str, body: str) -> None:
    principal = caller.principal
    tx.conn.execute(
        insert(change_request_events).values(
            change_request_id=row.id,
            revision=row.revision,
            kind=kind,
            user_id=None if principal is None else principal.user_id,
            actor_id=caller.actor_id,
            actor_name=caller.actor_name,
            body=body,
            change_hash=row.change_hash,
            created_at=tx.now,
        )
    )


def _set(tx: Transaction, row: Row[Any], **values: Any) -> Row[Any]:
    tx.conn.execute(
        update(change_requests)
        .where(change_requests.c.id == row.id)
        .values(**values, updated_at=tx.now, version=row.version + 1)
    )
    return load_request(tx.conn, row.id)


def _audit(
    tx: Transaction,
    caller: Caller,
    row: Row[Any],
    action: AuditAction,
    reason: str = "",
    **refs: Any,
) -> None:
    tx.record(
        caller,
        {
            "action": action.value,
            "object_type": row.object_type,
            "object_key": row.object_key,
            "project": row.project_key,
            "environment": row.environment,
            "reason": reason,
            "refs": {
                "change_request": row.id,
                "revision": row.revision,
                "change_hash": row.change_hash,
                **refs,
            },
        },
    )


def approve(
    svc: Services,
    caller: Caller,
    request_id: int,
    *,
    comment: str = "",
    change_hash: str | None = None,
) -> dict[str, Any]:
    with svc.change() as tx:
        row = _visible(tx.conn, caller, request_id)
        _pending(row, tx.now)
        _check_hash(row, change_hash)
        _require_approver(tx, caller, row, "approve")
        approvals = _current_approvals(row, _events(tx.conn, row.id))
        principal = caller.principal
        assert principal is not None  # _require_approver refuses system actors
        if any(a.user_id == principal.user_id for a in approvals):
            raise Conflict(f"you have already approved revision {row.revision} of this request")
        _add_event(tx, caller, row, "approval", comment)
        count = len(approvals) + 1
        if count >= row.approvals_required and row.state == "open":
            row = _set(tx, row, state="approved", decided_at=tx.now)
        _audit(tx, caller, row, AuditAction.CHANGE_REQUEST_APPROVED, comment, approvals=count)
        return request_view(tx.conn, load_request(tx.conn, row.id))


def reject(svc: Services, caller: Caller, request_id: int, *, comment: str = "") -> dict[str, Any]:
    """One rejection blocks the request for good (a new proposal starts over)."""
    with svc.change() as tx:
        row = _visible(tx.conn, caller, request_id)
        _pending(row, tx.now)
        _require_approver(tx, caller, row, "reject")
        _add_event(tx, caller, row, "rejection", comment)
        row = _set(tx, row, state="rejected", decided_at=tx.now)
        _audit(tx, caller, row, AuditAction.CHANGE_REQUEST_REJECTED, comment)
        return request_view(tx.conn, row)


def comment(svc: Services, caller: Caller, request_id: int, *, body: str) -> dict[str, Any]:
    if not body.strip():
        raise InvalidInput("a comment needs text", [FieldProblem("body", "must not be empty")])
    with svc.change() as tx:
        row = _visible(tx.conn, caller, request_id)
        _add_event(tx, caller, row, "comment", body)
        _audit(tx, caller, row, AuditAction.CHANGE_REQUEST_COMMENTED, body)
        return request_view(tx.conn, load_request(tx.conn, row.id))


def _author_or_admin(caller: Caller, row: Row[Any], verb: str) -> None:
    principal = caller.principal
    if principal is None or principal.user_id == row.author_user_id:
        return
    role = role_for(principal, row.project_id, None)
    if role is None or role.rank < Role.ADMIN.rank:
        raise PermissionDenied(f"only the author or a project admin may {verb} this change request")


def cancel(svc: Services, caller: Caller, request_id: int, *, reason: str = "") -> dict[str, Any]:
    with svc.change() as tx:
        row = _visible(tx.conn, caller, request_id)
        _pending(row, tx.now)
        _author_or_admin(caller, row, "cancel")
        row = _set(tx, row, state="cancelled", decided_at=tx.now)
        _audit(tx, caller, row, AuditAction.CHANGE_REQUEST_CANCELLED, reason)
        return request_view(tx.conn, row)


def revise(
    svc: Services, caller: Caller, request_id: int, changes: dict[str, Any], *, reason: str = ""
) -> dict[str, Any]:
    """Edit the proposed change: a new revision, and every earlier approval is void."""
    with svc.change() as tx:
        row = _visible(tx.conn, caller, request_id)
        _pending(row, tx.now)
        _author_or_admin(caller, row, "edit")
        old = Change.from_document(row.change)
        replan = _revisers().get(old.action)
        if replan is None:
            raise Conflict(
                f"a {old.action.value} change request cannot be edited; cancel it and propose anew"
            )
        change, verdict = replan(tx, caller, old, changes, reason or old.reason)
        required = max(verdict.approvals, row.approvals_required)
        row = _set(
            tx,
            row,
            change=change.document(),
            change_hash=change.digest(),
            revision=row.revision + 1,
            state="open",
            decided_at=None,
            approvals_required=required,
            policy=verdict.document(),
        )
        _audit(tx, caller, row, AuditAction.CHANGE_REQUEST_REVISED, reason)
        return request_view(tx.conn, row)


def schedule(
    svc: Services, caller: Caller, request_id: int, apply_at: datetime | None
) -> dict[str, Any]:
    """Set (or clear) the time at which the background job applies an approved request."""
    with svc.change() as tx:
        row = _visible(tx.conn, caller, request_id)
        _pending(row, tx.now)
        _may_apply(caller, row)
        when = None if apply_at is None else iso(apply_at)
        row = _set(tx, row, apply_at=when)
        return request_view(tx.conn, row)


def _may_apply(caller: Caller, row: Row[Any]) -> None:
    scopes = list(row.environment_ids) or [None]
    for environment_id in scopes:
        action = Action.WRITE_ENVIRONMENT_CONFIG if environment_id else Action.WRITE_PROJECT_OBJECT
        caller.authorize(action, row.project_id, environment_id, what="change request")


def apply_request(
    svc: Services, caller: Caller, request_id: int, *, change_hash: str | None = None
) -> dict[str, Any]:
    """Apply an approved request now; ``409`` naming what changed if its target moved."""
    conflict: Conflict | None = None
    with svc.change() as tx:
        row = _visible(tx.conn, caller, request_id)
        _pending(row, tx.now)
        _check_hash(row, change_hash)
        _may_apply(caller, row)
        if row.state != "approved":
            have = len(_current_approvals(row, _events(tx.conn, row.id)))
            raise Conflict(
                f"change request {row.id} has {have} of {row.approvals_required} approvals",
                state=row.state,
            )
        result, conflict = _apply(tx, caller, row)
    if conflict is not None:
        raise conflict
    return result


def _apply(
    tx: Transaction, caller: Caller, row: Row[Any]
) -> tuple[dict[str, Any], Conflict | None]:
    change = Change.from_document(row.change)
    approvals = _current_approvals(row, _events(tx.conn, row.id))
    change = Change.from_document(
        {**row.change, "refs": {**dict(change.refs), "change_request": row.id}}
    )
    evidence = {
        "policy": row.policy,
        "change_request": {
            "id": row.id,
            "revision": row.revision,
            "change_hash": row.change_hash,
            "author": row.author_name,
            "approved_by": [a.actor_name for a in approvals],
        },
    }
    _refuse_if_frozen(tx.conn, row, change)
    applier = _appliers()[change.action]
    try:
        # Appliers check that the target has not moved before they write anything.
        applied = applier(tx, caller, change, evidence)
    except Conflict as exc:
        row = _set(tx, row, state="conflicted", decided_at=tx.now)
        _audit(tx, caller, row, AuditAction.CHANGE_REQUEST_CONFLICTED, exc.detail)
        return request_view(tx.conn, row), exc
    seq = tx.entries[-1].seq if tx.entries else None
    row = _set(tx, row, state="applied", applied_audit_seq=seq)
    _audit(tx, caller, row, AuditAction.CHANGE_REQUEST_APPLIED, "", applied_seq=seq)
    return {"change_request": request_view(tx.conn, row), "result": applied}, None


def _refuse_if_frozen(conn: Connection, row: Row[Any], change: Change) -> None:
    """A change request is an expansion: none applies in the scope of an active incident.

    A behavior's request is held by incidents whose scope covers that behavior; a segment's
    by any incident in an environment it reaches (it may widen any behavior that uses it).
    The request stays approved, to be applied once the incident ends.
    """
    from lockgate.control.governance import gate

    if change.object_type not in (ObjectType.FLAG, ObjectType.SEGMENT):
        return
    env_ids = list(row.environment_ids) or [
        e.id
        for e in conn.execute(
            select(environments.c.id).where(environments.c.project_id == row.project_id)
        ).all()
    ]
    query = select(flags.c.tags, flags.c.risk_tier, flags.c.owner).where(
        flags.c.project_id == row.project_id
    )
    if change.object_type is ObjectType.FLAG:
        query = query.where(flags.c.key == change.object_key)
    frozen = gate.frozen_by(conn, env_ids, conn.execute(query).all())
    if frozen:
        rule = f"incident {', '.join(frozen)}: expansions are frozen until it ends"
        raise PolicyRefused(f"change request {row.id} cannot apply now: {rule}", rule=rule)


def expire_due(svc: Services, caller: Caller) -> int:
    """Expire every pending request past its time (the background job). Returns how many."""
    count = 0
    with svc.change() as tx:
        due = tx.conn.execute(
            select(change_requests.c.id).where(
                change_requests.c.state.in_(PENDING_STATES), change_requests.c.expires_at <= tx.now
            )
        ).all()
        for item in due:
            row = _set(tx, load_request(tx.conn, item.id), state="expired", decided_at=tx.now)
            _audit(tx, caller, row, AuditAction.CHANGE_REQUEST_EXPIRED, "expired unapplied")
            count += 1
    return count


def apply_due(svc: Services, caller: Caller) -> int:
    """Apply approved requests whose scheduled time has come (the background job)."""
    with svc.view() as conn:
        now = svc.now()
        due = [
            r.id
            for r in conn.execute(
                select(change_requests.c.id).where(
                    change_requests.c.state == "approved",
                    change_requests.c.apply_at.is_not(None),
                    change_requests.c.apply_at <= now,
                    change_requests.c.expires_at > now,
                )
            ).all()
        ]
    applied = 0
    for request_id in due:
        with svc.change() as tx:
            row = load_request(tx.conn, request_id)
            if row.state != "approved" or row.expires_at <= tx.now:
                continue  # decided elsewhere in the meantime
            try:
                _, conflict = _apply(tx, caller, row)
            except PolicyRefused:
                continue  # frozen by an incident: stays approved, tried again on the next run
            applied += conflict is None
    return applied
