"""Runtime action approvals: an application asks people before one concrete action.

An application whose behavior serves ``approval_required`` asks, through its server SDK
key, whether it may take one action (``refund``, ``send-email``…) for one context. The
request waits for people holding ``approver`` (or ``admin``) in its environment:

* states: ``pending`` → ``approved`` | ``denied`` | ``timed_out`` | ``withdrawn``; a
  decided request never changes again;
* ``approvals_required`` distinct people must approve (:func:`lockgate.policy.postures.
  runtime_approvers`: the posture's approvals for the behavior's risk tier and the
  environment's class, at least one; ``"deny"`` denies every request at once); one
  denial decides;
* the application (its SDK key) never decides, nor do automation tokens or anyone
  without the role in that environment (``403``);
* a request past its deadline is ``timed_out`` (which counts as denied): written by the
  background job, or by the first read that finds it due;
* a retried request with the same idempotency key (per environment) is the same request;
* private attributes of the context are stored, and audited, as names only;
* every request and every outcome is an audit entry (``runtime_approval:*``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, and_, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from lockgate import privacy
from lockgate.control import lookup
from lockgate.control.base import Caller, Services, Transaction, iso, system_caller
from lockgate.control.evidence.decisions import environment_policy
from lockgate.control.governance.gate import environment_class, posture_of
from lockgate.errors import Conflict, FieldProblem, InvalidInput, NotFound, PermissionDenied
from lockgate.policy.access import Action, Role, role_for
from lockgate.policy.changes import AuditAction
from lockgate.policy.postures import runtime_approvers
from lockgate.store.tables import (
    environments,
    flags,
    projects,
    runtime_approval_events,
    runtime_approvals,
    sdk_keys,
)

__all__ = [
    "APPROVAL_CHANNEL",
    "DECIDED",
    "MAX_TIMEOUT_SECONDS",
    "STATES",
    "ApprovalDraft",
    "KeyCaller",
    "approve",
    "deny",
    "expire_due",
    "get_approval",
    "get_for_key",
    "list_approvals",
    "redact",
    "request_approval",
    "withdraw",
]

STATES = ("pending", "approved", "denied", "timed_out", "withdrawn")
DECIDED = frozenset(STATES) - {"pending"}
MAX_TIMEOUT_SECONDS = 86_400
APPROVAL_CHANNEL = "lockgate_approvals"
"""PostgreSQL ``NOTIFY`` channel: the id of a runtime approval that was decided."""

_TIMEOUT_ACTOR = "runtime-approval-timeout"
_POLICY_ACTOR = "runtime-approval-policy"


@dataclass(frozen=True)
class KeyCaller(Caller):
    """An application asking through its server SDK key (recorded as ``sdk_key:<id>``)."""

    key_id: int = 0
    key_name: str = ""

    @property
    def actor_type(self) -> str:
        return "sdk_key"

    @property
    def actor_id(self) -> str:
        return f"sdk_key:{self.key_id}"

    @property
    def actor_name(self) -> str:
        return self.key_name or self.actor_id


@dataclass(frozen=True)
class ApprovalDraft:
    """What the application asks (already checked for shape by the transport)."""

    behavior: str
    action: str
    summary: str
    context: Mapping[str, Any]
    timeout_seconds: int
    idempotency_key: str | None = None
    private_attributes: Sequence[str] = ()
    served: Mapping[str, Any] | None = None
    """What the behavior served the (whole) context as the server evaluated it on arrival:
    variation, reason, rule id, flag version. ``None`` when it was not evaluated."""


def redact(context: Mapping[str, Any], private: Sequence[str]) -> tuple[dict[str, Any], list[str]]:
    """The context without the values of private attributes, and their names (sorted).

    Names listed as private but absent from the context are kept too: the evidence says
    what the application meant to hide, whether or not it was sent.
    """
    hidden = sorted(set(private))
    return {k: v for k, v in context.items() if k not in hidden}, hidden


# -- reading --------------------------------------------------------------------------------


def _load(conn: Connection, approval_id: int) -> Row[Any]:
    row = conn.execute(
        select(
            runtime_approvals,
            projects.c.key.label("project_key"),
            environments.c.key.label("environment_key"),
        )
        .join(projects, projects.c.id == runtime_approvals.c.project_id)
        .join(environments, environments.c.id == runtime_approvals.c.environment_id)
        .where(runtime_approvals.c.id == approval_id)
    ).first()
    if row is None:
        raise NotFound(f"runtime approval {approval_id} not found")
    return row


def _events(conn: Connection, approval_ids: Sequence[int]) -> dict[int, list[Row[Any]]]:
    found: dict[int, list[Row[Any]]] = {i: [] for i in approval_ids}
    if not approval_ids:
        return found
    rows = conn.execute(
        select(runtime_approval_events)
        .where(runtime_approval_events.c.runtime_approval_id.in_(list(approval_ids)))
        .order_by(runtime_approval_events.c.id)
    ).all()
    for row in rows:
        found[row.runtime_approval_id].append(row)
    return found


def _event_view(e: Row[Any]) -> dict[str, Any]:
    return {"by": e.actor_name, "comment": e.comment, "at": e.created_at}


def view(row: Row[Any], events: list[Row[Any]]) -> dict[str, Any]:
    return {
        "id": row.id,
        "project": row.project_key,
        "environment": row.environment_key,
        "behavior": row.behavior,
        "action": row.action,
        "summary": row.summary,
        "context": row.context,
        "private_attributes": row.private_attributes,
        "served": row.served,
        "idempotency_key": row.idempotency_key,
        "state": row.state,
        "approved": row.state == "approved",
        "approvals_required": row.approvals_required,
        "approvals": [_event_view(e) for e in events if e.kind == "approval"],
        "denials": [_event_view(e) for e in events if e.kind == "denial"],
        "policy": row.policy,
        "requested_by": row.requester_name,
        "requester": row.requester_id,
        "timeout_seconds": row.timeout_seconds,
        "created_at": row.created_at,
        "expires_at": row.expires_at,
        "decided_at": row.decided_at,
        "reason": row.outcome_reason,
        "version": row.version,
    }


def _view_of(conn: Connection, approval_id: int) -> dict[str, Any]:
    row = _load(conn, approval_id)
    return view(row, _events(conn, [row.id])[row.id])


# -- writing --------------------------------------------------------------------------------


def _set(tx: Transaction, row: Row[Any], **values: Any) -> Row[Any]:
    tx.conn.execute(
        update(runtime_approvals)
        .where(runtime_approvals.c.id == row.id)
        .values(**values, updated_at=tx.now, version=row.version + 1)
    )
    return _load(tx.conn, row.id)


def _announce(tx: Transaction, approval_id: int) -> None:
    """Tell every replica's waiting readers, once this transaction commits (PostgreSQL)."""
    if tx.services.database.is_sqlite:
        return
    tx.conn.execute(
        text("SELECT pg_notify(:channel, :payload)"),
        {"channel": APPROVAL_CHANNEL, "payload": str(approval_id)},
    )


def _evidence(row: Row[Any]) -> dict[str, Any]:
    """What was asked, as the audit entry's ``after``: the context already redacted."""
    return {
        "behavior": row.behavior,
        "action": row.action,
        "summary": row.summary,
        "context": row.context,
        "private_attributes": row.private_attributes,
        "served": row.served,
        "requested_by": row.requester_name,
        "timeout_seconds": row.timeout_seconds,
        "expires_at": row.expires_at,
    }


def _audit(
    tx: Transaction,
    caller: Caller,
    row: Row[Any],
    action: AuditAction,
    reason: str = "",
    *,
    after: Any = None,
    **refs: Any,
) -> None:
    tx.record(
        caller,
        {
            "action": action.value,
            "object_type": "flag",
            "object_key": row.behavior,
            "project": row.project_key,
            "environment": row.environment_key,
            "after": after,
            "reason": reason,
            "risk_tier": (row.policy or {}).get("risk_tier"),
            "evidence": {"policy": row.policy, "requested_by": row.requester_id},
            "refs": {
                "runtime_approval": row.id,
                "action": row.action,
                "idempotency_key": row.idempotency_key,
                "state": row.state,
                **refs,
            },
        },
    )


def _time_out(tx: Transaction, row: Row[Any]) -> Row[Any]:
    row = _set(tx, row, state="timed_out", decided_at=tx.now, outcome_reason="timed out")
    caller = system_caller(_TIMEOUT_ACTOR)
    _audit(
        tx,
        caller,
        row,
        AuditAction.RUNTIME_APPROVAL_TIMED_OUT,
        f"undecided after {row.timeout_seconds} s",
        approvals=_approval_count(tx.conn, row.id),
        approvals_required=row.approvals_required,
    )
    _announce(tx, row.id)
    return row


def _approval_count(conn: Connection, approval_id: int) -> int:
    return int(
        conn.execute(
            select(func.count())
            .select_from(runtime_approval_events)
            .where(
                runtime_approval_events.c.runtime_approval_id == approval_id,
                runtime_approval_events.c.kind == "approval",
            )
        ).scalar_one()
    )


def _settle(svc: Services, where: Any) -> int:
    """Time out the pending requests matching ``where`` whose deadline passed; how many.

    Reads first, so that the common case (nothing due) costs no write transaction.
    """
    now = svc.now()
    due_where = and_(
        runtime_approvals.c.state == "pending", runtime_approvals.c.expires_at <= now, where
    )
    with svc.view() as conn:
        due = [r.id for r in conn.execute(select(runtime_approvals.c.id).where(due_where)).all()]
    if not due:
        return 0
    count = 0
    with svc.change() as tx:
        for approval_id in due:
            row = _load(tx.conn, approval_id)
            if row.state == "pending" and row.expires_at <= tx.now:
                _time_out(tx, row)
                count += 1
    return count


def expire_due(svc: Services, caller: Caller | None = None) -> int:
    """The background job: every pending request past its deadline becomes ``timed_out``."""
    return _settle(svc, runtime_approvals.c.id.is_not(None))


# -- the application's side (SDK keys) ------------------------------------------------------


def _key_caller(conn: Connection, key: Any, request_id: str) -> KeyCaller:
    name = conn.execute(select(sdk_keys.c.name).where(sdk_keys.c.id == key.key_id)).scalar()
    return KeyCaller(
        principal=None,
        request_id=request_id,
        source="sdk",
        key_id=key.key_id,
        key_name=f"sdk key {name or key.key_id}",
    )


def _check_draft(draft: ApprovalDraft) -> None:
    problems = []
    if not 1 <= draft.timeout_seconds <= MAX_TIMEOUT_SECONDS:
        problems.append(FieldProblem("timeout_seconds", f"must be 1 to {MAX_TIMEOUT_SECONDS}"))
    if not draft.action.strip():
        problems.append(FieldProblem("action", "must not be blank"))
    if not draft.summary.strip():
        problems.append(FieldProblem("summary", "must not be blank"))
    if problems:
        raise InvalidInput("bad runtime approval request", problems)


def request_approval(
    svc: Services, key: Any, request_id: str, draft: ApprovalDraft
) -> tuple[dict[str, Any], bool]:
    """Ask for approval; ``(request, created)``. The same idempotency key returns the
    request already made (``created`` false), whatever its state."""
    _check_draft(draft)
    try:
        return _request(svc, key, request_id, draft)
    except IntegrityError:
        # Another request with the same idempotency key committed first: it is this one.
        if draft.idempotency_key is None:
            raise
        return _request(svc, key, request_id, draft)


def _same_request(row: Row[Any], draft: ApprovalDraft) -> None:
    if (row.behavior, row.action) != (draft.behavior, draft.action):
        raise Conflict(
            f"idempotency key {draft.idempotency_key!r} was used for another request "
            f"({row.behavior} / {row.action}, runtime approval {row.id})",
            field="idempotency_key",
            runtime_approval=row.id,
        )


def _request(
    svc: Services, key: Any, request_id: str, draft: ApprovalDraft
) -> tuple[dict[str, Any], bool]:
    if draft.idempotency_key is not None:
        with svc.view() as conn:
            existing = conn.execute(
                select(runtime_approvals.c.id).where(
                    runtime_approvals.c.environment_id == key.environment_id,
                    runtime_approvals.c.idempotency_key == draft.idempotency_key,
                )
            ).scalar()
        if existing is not None:
            return _existing(svc, key, existing, draft), False
    with svc.change() as tx:
        conn = tx.conn
        caller = _key_caller(conn, key, request_id)
        env = conn.execute(
            select(environments).where(environments.c.id == key.environment_id)
        ).first()
        project = conn.execute(select(projects).where(projects.c.id == key.project_id)).first()
        if env is None or project is None:
            raise NotFound("this SDK key's environment no longer exists")
        behavior = conn.execute(
            select(flags.c.risk_tier, flags.c.archived).where(
                flags.c.project_id == project.id, flags.c.key == draft.behavior
            )
        ).first()
        if behavior is None or behavior.archived:
            what = "is archived" if behavior is not None else "does not exist"
            raise InvalidInput(
                f"behavior {draft.behavior!r} {what} in project {project.key!r}",
                [FieldProblem("behavior", f"no live behavior {draft.behavior!r} here")],
            )
        env_class = environment_class(env)
        required, rule = runtime_approvers(posture_of(project), behavior.risk_tier, env_class)
        context, private = redact(draft.context, draft.private_attributes)
        # The environment's privacy rules too, whatever the client sent (docs/privacy.md).
        context, dropped = privacy.redact(context, environment_policy(env))
        private = sorted(set(private) | set(dropped))
        created = datetime.fromisoformat(tx.now.replace("Z", "+00:00"))
        result = conn.execute(
            insert(runtime_approvals).values(
                project_id=project.id,
                environment_id=env.id,
                behavior=draft.behavior,
                action=draft.action,
                summary=draft.summary,
                context=context,
                private_attributes=private,
                served=None if draft.served is None else dict(draft.served),
                idempotency_key=draft.idempotency_key,
                state="pending",
                approvals_required=max(required, 1),
                policy={
                    "rule": rule,
                    "risk_tier": behavior.risk_tier,
                    "environment_class": env_class,
                    "approvals_required": required,
                },
                requester_id=caller.actor_id,
                requester_name=caller.actor_name,
                timeout_seconds=draft.timeout_seconds,
                created_at=tx.now,
                updated_at=tx.now,
                expires_at=iso(created + timedelta(seconds=draft.timeout_seconds)),
                decided_at=None,
                outcome_reason="",
                version=1,
            )
        )
        row = _load(conn, int(result.inserted_primary_key[0]))  # type: ignore[index]
        _audit(
            tx,
            caller,
            row,
            AuditAction.RUNTIME_APPROVAL_REQUESTED,
            draft.summary,
            after=_evidence(row),
            approvals_required=row.approvals_required,
        )
        if required == 0:  # the posture denies every such request
            row = _set(tx, row, state="denied", decided_at=tx.now, outcome_reason=rule)
            _audit(tx, system_caller(_POLICY_ACTOR), row, AuditAction.RUNTIME_APPROVAL_DENIED, rule)
        return view(row, []), True


def _existing(svc: Services, key: Any, approval_id: int, draft: ApprovalDraft) -> dict[str, Any]:
    with svc.view() as conn:
        row = _load(conn, approval_id)
    _same_request(row, draft)
    return get_for_key(svc, key, approval_id)


def _for_key(conn: Connection, key: Any, approval_id: int) -> Row[Any]:
    row = _load(conn, approval_id)
    if row.environment_id != key.environment_id:  # another environment's: not there
        raise NotFound(f"runtime approval {approval_id} not found")
    return row


def get_for_key(svc: Services, key: Any, approval_id: int) -> dict[str, Any]:
    """The request as its application sees it (timed out first if its deadline passed)."""
    with svc.view() as conn:
        row = _for_key(conn, key, approval_id)
        if row.state != "pending" or row.expires_at > svc.now():
            return view(row, _events(conn, [row.id])[row.id])
    _settle(svc, runtime_approvals.c.id == approval_id)
    with svc.view() as conn:
        return _view_of(conn, approval_id)


def withdraw(
    svc: Services, key: Any, request_id: str, approval_id: int, *, reason: str = ""
) -> dict[str, Any]:
    """The application no longer needs the decision (a pending request only)."""
    _settle(svc, runtime_approvals.c.id == approval_id)
    with svc.change() as tx:
        row = _for_key(tx.conn, key, approval_id)
        _pending(row, tx.now)
        caller = _key_caller(tx.conn, key, request_id)
        row = _set(
            tx, row, state="withdrawn", decided_at=tx.now, outcome_reason=reason or "withdrawn"
        )
        _audit(tx, caller, row, AuditAction.RUNTIME_APPROVAL_WITHDRAWN, reason)
        _announce(tx, row.id)
        return view(row, _events(tx.conn, [row.id])[row.id])


def _pending(row: Row[Any], now: str) -> None:
    if row.state != "pending":
        raise Conflict(f"runtime approval {row.id} is {row.state}", state=row.state)
    if row.expires_at <= now:
        raise Conflict(f"runtime approval {row.id} has timed out", state="timed_out")


# -- the approvers' side (users and API tokens) -----------------------------------------------


def _visible(conn: Connection, caller: Caller, approval_id: int) -> Row[Any]:
    row = _load(conn, approval_id)
    caller.may_read(row.project_id, f"runtime approval {approval_id}")
    return row


def list_approvals(
    svc: Services,
    caller: Caller,
    project_key: str,
    *,
    state: str | None = None,
    environment: str | None = None,
    behavior: str | None = None,
    behavior_kind: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> lookup.Page:
    if state is not None and state not in STATES:
        raise InvalidInput("bad state", [FieldProblem("state", f"one of {', '.join(STATES)}")])
    limit, offset = lookup.page_args(limit, cursor)
    with svc.view() as conn:
        project = caller.project(conn, project_key, Action.READ)
        where = [runtime_approvals.c.project_id == project.id]
        if environment is not None:
            env = lookup.environment(conn, project, environment)
            where.append(runtime_approvals.c.environment_id == env.id)
        if behavior is not None:
            where.append(runtime_approvals.c.behavior == behavior)
        if behavior_kind is not None:
            c = runtime_approvals.c
            where.append(lookup.behavior_of_kind(behavior_kind, c.behavior, c.project_id))
    _settle(svc, and_(*where))
    if state is not None:
        where.append(runtime_approvals.c.state == state)
    with svc.view() as conn:
        total = conn.execute(
            select(func.count()).select_from(runtime_approvals).where(and_(*where))
        ).scalar_one()
        ids = [
            r.id
            for r in conn.execute(
                select(runtime_approvals.c.id)
                .where(and_(*where))
                .order_by(runtime_approvals.c.id.desc())
                .offset(offset)
                .limit(limit)
            ).all()
        ]
        events = _events(conn, ids)
        items = [view(_load(conn, i), events[i]) for i in ids]
    return lookup.make_page(items, limit, offset, total)


def get_approval(svc: Services, caller: Caller, approval_id: int) -> dict[str, Any]:
    with svc.view() as conn:
        _visible(conn, caller, approval_id)
    _settle(svc, runtime_approvals.c.id == approval_id)
    with svc.view() as conn:
        return _view_of(conn, approval_id)


def _require_approver(conn: Connection, caller: Caller, row: Row[Any], verb: str) -> None:
    principal = caller.principal
    if principal is None:
        raise PermissionDenied(f"a system actor cannot {verb} runtime approvals")
    if caller.actor_id == row.requester_id:
        raise PermissionDenied(f"whoever asked cannot {verb} their own request")
    if principal.is_automation:
        raise PermissionDenied(f"automation tokens never {verb} runtime approvals")
    role = role_for(principal, row.project_id, row.environment_id)
    if role is None or role.rank < Role.APPROVER.rank:
        raise PermissionDenied(
            f"only an approver in environment {row.environment_key!r} may {verb} this "
            "runtime approval"
        )


def approve(
    svc: Services, caller: Caller, approval_id: int, *, comment: str = ""
) -> dict[str, Any]:
    """One approval; the request is approved once ``approvals_required`` people gave one."""
    return _decide(svc, caller, approval_id, "approval", comment)


def deny(svc: Services, caller: Caller, approval_id: int, *, comment: str = "") -> dict[str, Any]:
    """One denial decides: the application must not take the action."""
    return _decide(svc, caller, approval_id, "denial", comment)


def _decide(
    svc: Services, caller: Caller, approval_id: int, kind: str, comment: str
) -> dict[str, Any]:
    verb = "approve" if kind == "approval" else "deny"
    with svc.view() as conn:
        row = _visible(conn, caller, approval_id)
        _require_approver(conn, caller, row, verb)
    _settle(svc, runtime_approvals.c.id == approval_id)
    with svc.change() as tx:
        row = _visible(tx.conn, caller, approval_id)
        _require_approver(tx.conn, caller, row, verb)
        _pending(row, tx.now)
        principal = caller.principal
        assert principal is not None  # _require_approver refuses system actors
        given = _events(tx.conn, [row.id])[row.id]
        if any(e.user_id == principal.user_id for e in given):
            raise Conflict(f"you have already decided on runtime approval {row.id}")
        tx.conn.execute(
            insert(runtime_approval_events).values(
                runtime_approval_id=row.id,
                kind=kind,
                user_id=principal.user_id,
                actor_id=caller.actor_id,
                actor_name=caller.actor_name,
                comment=comment,
                created_at=tx.now,
            )
        )
        approvals = sum(e.kind == "approval" for e in given) + (kind == "approval")
        if kind == "denial":
            row = _set(
                tx,
                row,
                state="denied",
                decided_at=tx.now,
                outcome_reason=comment or f"denied by {caller.actor_name}",
            )
            _audit(tx, caller, row, AuditAction.RUNTIME_APPROVAL_DENIED, comment)
        else:
            if approvals >= row.approvals_required:
                row = _set(
                    tx,
                    row,
                    state="approved",
                    decided_at=tx.now,
                    outcome_reason=comment or f"approved by {caller.actor_name}",
                )
            _audit(
                tx,
                caller,
                row,
                AuditAction.RUNTIME_APPROVAL_APPROVED,
                comment,
                approvals=approvals,
                approvals_required=row.approvals_required,
            )
        if row.state in DECIDED:
            _announce(tx, row.id)
        return view(row, _events(tx.conn, [row.id])[row.id])
