"""Guardrail and rollout-plan definitions: governed writes, reads with the current state.

Every write is a typed change decided by the project's posture, like a flag's
configuration:

* creating a guardrail adds a constraint (no change of exposure): applied at once;
  changing or deleting one may loosen a constraint, so it is an expansion of authority
  the posture decides;
* creating (or replacing) a rollout plan is an expansion: the plan authorizes the system
  to widen the behavior stage by stage, so its approval under the posture — direct, or a
  change request approved by the required people — is what covers every advance it
  allows (:class:`lockgate.policy.postures.PlanStep`). A plan row exists only once that
  approval was given;
* pausing or deleting a plan stops automatic advances: applied at once; resuming one lets
  them go on: an expansion the posture decides;
* advancing a plan by hand is the next stage's configuration written as the person, under
  the posture (the cycle notices when such a change, or its change request, has applied).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update

from lockgate.control import lookup
from lockgate.control.base import Caller, Services, Transaction
from lockgate.control.governance import gate
from lockgate.control.governance.gate import Deferred
from lockgate.errors import Conflict, FieldProblem, InvalidInput, NotFound
from lockgate.guardrails import model, plans
from lockgate.policy import postures
from lockgate.policy.access import Action
from lockgate.policy.changes import AuditAction, Change, ObjectType
from lockgate.policy.classify import Direction
from lockgate.store.tables import flag_configs, guardrails, rollout_plans

__all__ = [
    "advance_plan",
    "apply_guardrail_change",
    "apply_plan_change",
    "delete_guardrail",
    "delete_plan",
    "get_guardrail",
    "get_plan",
    "guardrail_view",
    "list_guardrails",
    "pause_plan",
    "plan_view",
    "put_guardrail",
    "put_plan",
    "resume_plan",
]

MAX_GUARDRAILS_PER_FLAG = 50


@dataclass(frozen=True)
class Target:
    project: Row[Any]
    environment: Row[Any]
    flag: Row[Any]


def _target(
    tx_conn: Any, caller: Caller, project_key: str, flag_key: str, env_key: str, action: Action
) -> Target:
    project = lookup.project(tx_conn, project_key)
    env = lookup.environment(tx_conn, project, env_key)
    caller.authorize(action, project.id, env.id, what=f"project {project_key!r}")
    flag = lookup.flag(tx_conn, project, flag_key)
    return Target(project, env, flag)


def guardrail_view(row: Row[Any], flag_key: str, env_key: str) -> dict[str, Any]:
    definition = dict(row.definition)
    return {
        **definition,
        "key": row.key,
        "flag": flag_key,
        "environment": env_key,
        "source": row.source,
        "state": row.state,
        "evaluation": row.evaluation,
        "evaluated_at": row.evaluated_at,
        "breached_at": row.breached_at,
        "version": row.version,
        "created_at": row.created_at,
        "created_by": row.created_by,
        "updated_at": row.updated_at,
    }


def plan_view(row: Row[Any], flag_key: str, env_key: str) -> dict[str, Any]:
    spec = _plan_spec(row, flag_key, env_key)
    stage = spec.stages[row.stage].name if 0 <= row.stage < len(spec.stages) else None
    return {
        "id": row.id,
        **spec.document(),
        "source": row.source,
        "stage": row.stage,
        "stage_name": stage,
        "status": row.status,
        "stage_started_at": row.stage_started_at,
        "require_approval": bool(row.require_approval),
        "approval": row.approval,
        "last_step": row.last_step,
        "version": row.version,
        "created_at": row.created_at,
        "created_by": row.created_by,
        "updated_at": row.updated_at,
    }


def _plan_spec(row: Row[Any], flag_key: str, env_key: str) -> model.PlanSpec:
    return model.read_plan(dict(row.definition), flag=flag_key, environment=env_key)


def _guardrail_row(conn: Connection, t: Target, key: str) -> Row[Any] | None:
    return conn.execute(
        select(guardrails).where(
            guardrails.c.flag_id == t.flag.id,
            guardrails.c.environment_id == t.environment.id,
            guardrails.c.key == key,
        )
    ).first()


def _plan_row(conn: Connection, t: Target) -> Row[Any] | None:
    return conn.execute(
        select(rollout_plans).where(
            rollout_plans.c.flag_id == t.flag.id,
            rollout_plans.c.environment_id == t.environment.id,
        )
    ).first()


def _decide(
    tx: Transaction,
    caller: Caller,
    t: Target,
    change: Change,
    direction: Direction,
    why: str,
    *,
    plan: bool = False,
) -> tuple[Deferred | None, dict[str, Any]]:
    tier = t.flag.risk_tier
    scopes = [(tier, gate.environment_class(t.environment))]
    posture = gate.posture_of(t.project)
    gate.require_reason(change, posture, scopes, [tier])
    verdict = postures.decide(
        direction,
        reasons=(why,) if direction is Direction.EXPANSION else (),
        scopes=scopes,
        posture=posture,
        system=caller.automatic,
    )
    deferred = gate.govern(
        tx, caller, t.project, change, verdict, environment_ids=[t.environment.id], plan=plan
    )
    return deferred, {"policy": verdict.document()}


def _change(
    action: AuditAction,
    object_type: ObjectType,
    t: Target,
    caller: Caller,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    base_version: int | None,
    reason: str,
    object_key: str | None = None,
) -> Change:
    return Change(
        action=action,
        object_type=object_type,
        project=t.project.key,
        environment=t.environment.key,
        object_key=object_key or t.flag.key,
        before=before,
        after=after,
        base_version=base_version,
        reason=reason,
        actor_id=caller.actor_id,
        actor_name=caller.actor_name,
    )


def _audit(tx: Transaction, caller: Caller, change: Change, evidence: dict[str, Any]) -> None:
    tx.record(
        caller,
        {
            "action": change.action.value,
            "object_type": change.object_type.value,
            "object_key": change.object_key,
            "project": change.project,
            "environment": change.environment,
            "before": change.before,
            "after": change.after,
            "reason": change.reason,
            "evidence": evidence,
            "refs": dict(change.refs),
        },
    )


# --- guardrails ---------------------------------------------------------------------------


def put_guardrail(
    svc: Services,
    caller: Caller,
    project_key: str,
    flag_key: str,
    env_key: str,
    key: str,
    body: Any,
    *,
    reason: str = "",
    source: str = "api",
    plan: bool = False,
) -> dict[str, Any] | Deferred:
    """Create or replace the guardrail ``key`` of a behavior in one environment."""
    data = dict(body) if isinstance(body, dict) else body
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if k != "reason"} | {"key": key}
    spec = model.read_guardrail(data, flag=flag_key, environment=env_key)
    with svc.change() as tx:
        t = _target(
            tx.conn, caller, project_key, flag_key, env_key, Action.WRITE_ENVIRONMENT_CONFIG
        )
        row = _guardrail_row(tx.conn, t, key)
        after = spec.document()
        if row is not None and dict(row.definition) == after and row.source == source:
            return guardrail_view(row, flag_key, env_key)
        if row is None:
            count = len(
                tx.conn.execute(
                    select(guardrails.c.id).where(
                        guardrails.c.flag_id == t.flag.id,
                        guardrails.c.environment_id == t.environment.id,
                    )
                ).all()
            )
            if count >= MAX_GUARDRAILS_PER_FLAG:
                raise InvalidInput(
                    "too many guardrails",
                    [
                        FieldProblem(
                            "key", f"at most {MAX_GUARDRAILS_PER_FLAG} per behavior and environment"
                        )
                    ],
                )
        action = AuditAction.GUARDRAIL_CREATED if row is None else AuditAction.GUARDRAIL_UPDATED
        change = _change(
            action, ObjectType.GUARDRAIL, t, caller,
            None if row is None else {"version": row.version, **dict(row.definition)},
            {"version": 1 if row is None else row.version + 1, "source": source, **after},
            None if row is None else row.version, reason, f"{flag_key}/{key}",
        )  # fmt: skip
        direction = Direction.NONE if row is None else Direction.EXPANSION
        deferred, evidence = _decide(
            tx, caller, t, change, direction, "a changed guardrail may constrain less", plan=plan
        )
        if deferred is not None:
            return deferred
        return _write_guardrail(tx, caller, t, change, evidence)


def _write_guardrail(
    tx: Transaction, caller: Caller, t: Target, change: Change, evidence: dict[str, Any]
) -> dict[str, Any]:
    key = change.object_key.partition("/")[2]
    row = _guardrail_row(tx.conn, t, key)
    current = None if row is None else row.version
    if current != change.base_version:
        raise gate.target_moved(change, current or 0)
    after = dict(change.after or {})
    source = after.pop("source", "api")
    after.pop("version", None)
    _check_binding(tx.conn, t, key, after)
    before_metric = None if row is None else row.definition.get("metric")
    if row is None:
        tx.conn.execute(
            insert(guardrails).values(
                project_id=t.project.id, environment_id=t.environment.id, flag_id=t.flag.id,
                key=key, definition=after, source=source, state="no_data", version=1,
                created_at=tx.now, created_by=caller.actor_name, updated_at=tx.now,
            )
        )  # fmt: skip
    else:
        tx.conn.execute(
            update(guardrails)
            .where(guardrails.c.id == row.id)
            .values(
                definition=after, source=source, version=row.version + 1, updated_at=tx.now,
                state="no_data", evaluation=None, breached_at=None,
            )
        )  # fmt: skip
    _audit(tx, caller, change, evidence)
    _rebind(tx, t, before_metric, after["metric"])
    stored = _guardrail_row(tx.conn, t, key)
    assert stored is not None
    return guardrail_view(stored, t.flag.key, t.environment.key)


def _check_cohort_may_leave(conn: Connection, t: Target, per: str) -> None:
    """A cohort's value leaves the application in every summary row: an attribute the
    environment keeps private (or hashes, or drops) cannot scope a guardrail."""
    from lockgate.privacy import Rule, parse_settings
    from lockgate.store.tables import environments

    row = conn.execute(
        select(environments.c.privacy).where(environments.c.id == t.environment.id)
    ).first()
    policy, _ = parse_settings((row.privacy if row is not None else None) or {})
    rule = Rule.KEEP if policy is None else policy.rule_for(per)
    if rule is not Rule.KEEP:
        raise InvalidInput(
            f"attribute {per!r} is private in {t.environment.key!r} ({rule.value}): its values "
            "never leave the application, so it cannot scope a guardrail",
            [FieldProblem("per", f"{per!r} is private in this environment")],
        )


def _check_binding(conn: Connection, t: Target, key: str, definition: dict[str, Any]) -> None:
    """The guardrail's metric can be bound in the snapshot: one cohort attribute per metric
    (SDKs scope a metric's summaries by one attribute), at most
    :data:`~lockgate.engine.codec.MAX_METRIC_BEHAVIORS` behaviors per metric and
    :data:`~lockgate.engine.codec.MAX_METRICS` metrics per environment."""
    from lockgate.engine.codec import MAX_METRIC_BEHAVIORS, MAX_METRICS
    from lockgate.store.tables import flags

    rows = conn.execute(
        select(guardrails.c.key, guardrails.c.flag_id, guardrails.c.definition, flags.c.archived)
        .join(flags, flags.c.id == guardrails.c.flag_id)
        .where(guardrails.c.environment_id == t.environment.id)
    ).all()
    metric, per = definition["metric"], definition.get("per")
    if per is not None:
        _check_cohort_may_leave(conn, t, per)
    others = [r for r in rows if not (r.key == key and r.flag_id == t.flag.id) and not r.archived]
    same = [r for r in others if r.definition.get("metric") == metric]
    for other in same:
        if per is not None and other.definition.get("per") not in (None, per):
            had = other.definition["per"]
            raise InvalidInput(
                f"metric {metric!r} is already capped per {had!r} here",
                [FieldProblem("per", f"use {had!r}: one cohort attribute per metric")],
            )
    behaviors = {r.flag_id for r in same} | {t.flag.id}
    if len(behaviors) > MAX_METRIC_BEHAVIORS:
        raise InvalidInput(
            f"metric {metric!r} is bound to {MAX_METRIC_BEHAVIORS} behaviors here already",
            [FieldProblem("metric", f"at most {MAX_METRIC_BEHAVIORS} behaviors per metric")],
        )
    if len({r.definition.get("metric") for r in others} | {metric}) > MAX_METRICS:
        raise InvalidInput(
            f"environment {t.environment.key!r} has {MAX_METRICS} guarded metrics already",
            [FieldProblem("metric", f"at most {MAX_METRICS} metrics per environment")],
        )


def _rebind(tx: Transaction, t: Target, before: str | None, after: str | None) -> None:
    """A guardrail's metric is bound in the environment's snapshot (SDKs attribute tracked
    values to its behaviors): a new snapshot version when the bindings change."""
    from lockgate.control.configuration import snapshots

    del before, after  # any change of a guardrail may change the bindings (metric, cohort)
    snapshots.bump(tx, [t.environment.id])


def delete_guardrail(
    svc: Services,
    caller: Caller,
    project_key: str,
    flag_key: str,
    env_key: str,
    key: str,
    *,
    reason: str = "",
) -> dict[str, Any] | Deferred:
    """Delete a guardrail (it stops constraining: an expansion the posture decides)."""
    with svc.change() as tx:
        t = _target(
            tx.conn, caller, project_key, flag_key, env_key, Action.WRITE_ENVIRONMENT_CONFIG
        )
        row = _guardrail_row(tx.conn, t, key)
        if row is None:
            raise NotFound(f"guardrail {key!r} not found on flag {flag_key!r} in {env_key!r}")
        change = _change(
            AuditAction.GUARDRAIL_DELETED, ObjectType.GUARDRAIL, t, caller,
            {"version": row.version, **dict(row.definition)}, None, row.version, reason,
            f"{flag_key}/{key}",
        )  # fmt: skip
        deferred, evidence = _decide(
            tx, caller, t, change, Direction.EXPANSION, "a deleted guardrail no longer constrains"
        )
        if deferred is not None:
            return deferred
        return _delete_guardrail(tx, caller, t, change, evidence)


def _delete_guardrail(
    tx: Transaction, caller: Caller, t: Target, change: Change, evidence: dict[str, Any]
) -> dict[str, Any]:
    key = change.object_key.partition("/")[2]
    row = _guardrail_row(tx.conn, t, key)
    if row is None or row.version != change.base_version:
        raise gate.target_moved(change, 0 if row is None else row.version)
    tx.conn.execute(delete(guardrails).where(guardrails.c.id == row.id))
    _audit(tx, caller, change, evidence)
    _rebind(tx, t, row.definition.get("metric"), None)
    return {"deleted": True, "key": key, "flag": t.flag.key, "environment": t.environment.key}


def apply_guardrail_change(
    tx: Transaction, caller: Caller, change: Change, evidence: dict[str, Any]
) -> dict[str, Any]:
    """Apply an approved guardrail change (from a change request) if nothing moved."""
    flag_key = change.object_key.partition("/")[0]
    t = _target(
        tx.conn, caller, change.project, flag_key, change.environment or "",
        Action.WRITE_ENVIRONMENT_CONFIG,
    )  # fmt: skip
    if change.action is AuditAction.GUARDRAIL_DELETED:
        return _delete_guardrail(tx, caller, t, change, evidence)
    return _write_guardrail(tx, caller, t, change, evidence)


def list_guardrails(
    svc: Services, caller: Caller, project_key: str, flag_key: str, env_key: str
) -> dict[str, Any]:
    with svc.view() as conn:
        t = _target(conn, caller, project_key, flag_key, env_key, Action.READ_ENVIRONMENT)
        rows = conn.execute(
            select(guardrails)
            .where(
                guardrails.c.flag_id == t.flag.id,
                guardrails.c.environment_id == t.environment.id,
            )
            .order_by(guardrails.c.key)
        ).all()
    return {
        "flag": flag_key,
        "environment": env_key,
        "items": [guardrail_view(r, flag_key, env_key) for r in rows],
    }


def get_guardrail(
    svc: Services, caller: Caller, project_key: str, flag_key: str, env_key: str, key: str
) -> dict[str, Any]:
    with svc.view() as conn:
        t = _target(conn, caller, project_key, flag_key, env_key, Action.READ_ENVIRONMENT)
        row = _guardrail_row(conn, t, key)
    if row is None:
        raise NotFound(f"guardrail {key!r} not found on flag {flag_key!r} in {env_key!r}")
    return guardrail_view(row, flag_key, env_key)


# --- plans --------------------------------------------------------------------------------


def _check_variations(t: Target, spec: model.PlanSpec) -> None:
    known = {v.get("key") for v in t.flag.variations or []}
    named = [("variation", spec.variation), ("stable", spec.stable)]
    named += [(f"stages[{i}].variation", s.variation) for i, s in enumerate(spec.stages)]
    problems = [
        FieldProblem(name, f"the flag has no variation {value!r}")
        for name, value in named
        if value is not None and value not in known
    ]
    if problems:
        raise InvalidInput("the rollout plan names unknown variations", problems)


def put_plan(
    svc: Services,
    caller: Caller,
    project_key: str,
    flag_key: str,
    env_key: str,
    body: Any,
    *,
    reason: str = "",
    source: str = "api",
    plan: bool = False,
) -> dict[str, Any] | Deferred:
    """Create or replace the staged rollout of a behavior in one environment (an expansion:
    its approval under the posture covers the advances it allows)."""
    data = body
    if isinstance(body, dict):
        data = {k: v for k, v in body.items() if k != "reason"}
    spec = model.read_plan(data, flag=flag_key, environment=env_key)
    with svc.change() as tx:
        t = _target(
            tx.conn, caller, project_key, flag_key, env_key, Action.WRITE_ENVIRONMENT_CONFIG
        )
        _check_variations(t, spec)
        row = _plan_row(tx.conn, t)
        after = spec.document()
        if row is not None and dict(row.definition) == after:
            return plan_view(row, flag_key, env_key)
        change = _change(
            AuditAction.ROLLOUT_PLAN_CREATED if row is None else AuditAction.ROLLOUT_PLAN_UPDATED,
            ObjectType.ROLLOUT_PLAN, t, caller,
            None if row is None else {"version": row.version, **dict(row.definition)},
            {"version": 1 if row is None else row.version + 1, "source": source, **after},
            None if row is None else row.version, reason,
        )  # fmt: skip
        deferred, evidence = _decide(
            tx, caller, t, change, Direction.EXPANSION,
            "a rollout plan lets the system widen the behavior stage by stage", plan=plan,
        )  # fmt: skip
        if deferred is not None:
            return deferred
        return _write_plan(tx, caller, t, change, evidence)


def _write_plan(
    tx: Transaction, caller: Caller, t: Target, change: Change, evidence: dict[str, Any]
) -> dict[str, Any]:
    row = _plan_row(tx.conn, t)
    current = None if row is None else row.version
    if current != change.base_version:
        raise gate.target_moved(change, current or 0)
    after = dict(change.after or {})
    source = after.pop("source", "api")
    after.pop("version", None)
    approval = {
        "approved_at": tx.now,
        "by": evidence.get("change_request", {}).get("approved_by") or [caller.actor_name],
        "policy": evidence.get("policy"),
        "change_request": evidence.get("change_request", {}).get("id"),
    }
    values = {
        "definition": after, "source": source, "stage": -1, "status": plans.ACTIVE,
        "stage_started_at": tx.now, "require_approval": False, "approval": approval,
        "last_step": None, "updated_at": tx.now,
    }  # fmt: skip
    if row is None:
        tx.conn.execute(
            insert(rollout_plans).values(
                project_id=t.project.id, environment_id=t.environment.id, flag_id=t.flag.id,
                version=1, created_at=tx.now, created_by=caller.actor_name, **values,
            )
        )  # fmt: skip
    else:
        tx.conn.execute(
            update(rollout_plans)
            .where(rollout_plans.c.id == row.id)
            .values(version=row.version + 1, **values)
        )
    _audit(tx, caller, change, evidence)
    stored = _plan_row(tx.conn, t)
    assert stored is not None
    return plan_view(stored, t.flag.key, t.environment.key)


def get_plan(
    svc: Services, caller: Caller, project_key: str, flag_key: str, env_key: str
) -> dict[str, Any]:
    with svc.view() as conn:
        t = _target(conn, caller, project_key, flag_key, env_key, Action.READ_ENVIRONMENT)
        row = _plan_row(conn, t)
    if row is None:
        raise NotFound(f"flag {flag_key!r} has no rollout plan in {env_key!r}")
    return plan_view(row, flag_key, env_key)


def _status_change(
    svc: Services,
    caller: Caller,
    project_key: str,
    flag_key: str,
    env_key: str,
    action: AuditAction,
    values: dict[str, Any],
    reason: str,
    refs: dict[str, Any] | None = None,
) -> dict[str, Any] | Deferred:
    with svc.change() as tx:
        t = _target(
            tx.conn, caller, project_key, flag_key, env_key, Action.WRITE_ENVIRONMENT_CONFIG
        )
        row = _plan_row(tx.conn, t)
        if row is None:
            raise NotFound(f"flag {flag_key!r} has no rollout plan in {env_key!r}")
        before = {"version": row.version, "status": row.status,
                  "require_approval": bool(row.require_approval)}  # fmt: skip
        change = _change(
            action, ObjectType.ROLLOUT_PLAN, t, caller, before,
            {**before, **values, "version": row.version + 1}, row.version, reason,
        )  # fmt: skip
        if refs:
            change = dataclasses.replace(change, refs=refs)
        expands = action is AuditAction.ROLLOUT_PLAN_RESUMED
        deferred, evidence = _decide(
            tx, caller, t, change, Direction.EXPANSION if expands else Direction.NONE,
            "a resumed plan lets the system widen the behavior again",
        )  # fmt: skip
        if deferred is not None:
            return deferred
        return _write_status(tx, caller, t, change, evidence)


def _write_status(
    tx: Transaction, caller: Caller, t: Target, change: Change, evidence: dict[str, Any]
) -> dict[str, Any]:
    row = _plan_row(tx.conn, t)
    if row is None or row.version != change.base_version:
        raise gate.target_moved(change, 0 if row is None else row.version)
    after = dict(change.after or {})
    tx.conn.execute(
        update(rollout_plans)
        .where(rollout_plans.c.id == row.id)
        .values(
            status=after["status"],
            require_approval=after["require_approval"],
            version=row.version + 1,
            updated_at=tx.now,
        )
    )
    _audit(tx, caller, change, evidence)
    stored = _plan_row(tx.conn, t)
    assert stored is not None
    return plan_view(stored, t.flag.key, t.environment.key)


def pause_plan(
    svc: Services,
    caller: Caller,
    project_key: str,
    flag_key: str,
    env_key: str,
    reason: str = "",
    refs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Stop automatic advances (applied at once: a reduction of what the system may do)."""
    result = _status_change(
        svc, caller, project_key, flag_key, env_key, AuditAction.ROLLOUT_PLAN_PAUSED,
        {"status": plans.PAUSED}, reason, refs,
    )  # fmt: skip
    assert not isinstance(result, Deferred)
    return result


def resume_plan(
    svc: Services, caller: Caller, project_key: str, flag_key: str, env_key: str, reason: str = ""
) -> dict[str, Any] | Deferred:
    """Let the system advance again (clears a guardrail's hold): the posture decides."""
    return _status_change(
        svc, caller, project_key, flag_key, env_key, AuditAction.ROLLOUT_PLAN_RESUMED,
        {"status": plans.ACTIVE, "require_approval": False}, reason,
    )  # fmt: skip


def delete_plan(
    svc: Services, caller: Caller, project_key: str, flag_key: str, env_key: str, reason: str = ""
) -> dict[str, Any]:
    """Delete the plan: nothing advances automatically any more; the configuration stays."""
    with svc.change() as tx:
        t = _target(
            tx.conn, caller, project_key, flag_key, env_key, Action.WRITE_ENVIRONMENT_CONFIG
        )
        row = _plan_row(tx.conn, t)
        if row is None:
            raise NotFound(f"flag {flag_key!r} has no rollout plan in {env_key!r}")
        change = _change(
            AuditAction.ROLLOUT_PLAN_DELETED, ObjectType.ROLLOUT_PLAN, t, caller,
            {"version": row.version, **dict(row.definition)}, None, row.version, reason,
        )  # fmt: skip
        _, evidence = _decide(tx, caller, t, change, Direction.NONE, "")
        tx.conn.execute(delete(rollout_plans).where(rollout_plans.c.id == row.id))
        _audit(tx, caller, change, evidence)
    return {"deleted": True, "flag": flag_key, "environment": env_key}


def apply_plan_change(
    tx: Transaction, caller: Caller, change: Change, evidence: dict[str, Any]
) -> dict[str, Any]:
    """Apply an approved plan change (from a change request) if nothing moved."""
    t = _target(
        tx.conn, caller, change.project, change.object_key, change.environment or "",
        Action.WRITE_ENVIRONMENT_CONFIG,
    )  # fmt: skip
    if change.action is AuditAction.ROLLOUT_PLAN_RESUMED:
        return _write_status(tx, caller, t, change, evidence)
    return _write_plan(tx, caller, t, change, evidence)


def current_config(conn: Any, flag_id: int, environment_id: int) -> tuple[int, dict[str, Any]]:
    row = conn.execute(
        select(flag_configs.c.version, flag_configs.c.config).where(
            flag_configs.c.flag_id == flag_id, flag_configs.c.environment_id == environment_id
        )
    ).first()
    if row is None:
        raise NotFound("the flag has no configuration in that environment")
    return row.version, dict(row.config or {})


def advance_plan(
    svc: Services,
    caller: Caller,
    project_key: str,
    flag_key: str,
    env_key: str,
    reason: str = "",
    *,
    plan: bool = False,
) -> dict[str, Any] | Deferred:
    """A person advances the plan to its next stage (through an approval gate, or past a
    guardrail's hold): the stage's configuration, written as that person under the
    posture. Applied now, the plan moves; proposed, it moves when the request applies."""
    from lockgate.control.configuration import flags as flag_use

    with svc.view() as conn:
        t = _target(conn, caller, project_key, flag_key, env_key, Action.WRITE_ENVIRONMENT_CONFIG)
        row = _plan_row(conn, t)
        if row is None:
            raise NotFound(f"flag {flag_key!r} has no rollout plan in {env_key!r}")
        spec = _plan_spec(row, flag_key, env_key)
        _, config = current_config(conn, t.flag.id, t.environment.id)
    if row.stage + 1 >= len(spec.stages):
        raise Conflict(f"the rollout plan of {flag_key!r} in {env_key!r} is at its last stage")
    stable = spec.stable or str(config.get("off_variation") or "off")
    changes = plans.stage_config(config, spec.stages[row.stage + 1], spec.variation, stable)
    result = flag_use.update_flag_config(
        svc, caller, project_key, flag_key, env_key, changes, None,
        reason or f"advance the rollout to stage {row.stage + 1}",
        refs={"rollout_plan": row.id, "stage": row.stage + 1}, plan=plan,
    )  # fmt: skip
    if isinstance(result, Deferred) or plan:
        return result
    with svc.change() as tx:
        moved = _record_advance(tx, caller, t, row, row.stage + 1, {"by": "a person"})
    return {"plan": moved, "config": result}


def _record_advance(
    tx: Transaction,
    caller: Caller,
    t: Target,
    row: Row[Any],
    stage: int,
    evidence: dict[str, Any],
) -> dict[str, Any]:
    spec = _plan_spec(row, t.flag.key, t.environment.key)
    last = stage + 1 >= len(spec.stages)
    status = plans.COMPLETED if last else (
        plans.AWAITING_APPROVAL if spec.stages[stage + 1].approval else plans.ACTIVE
    )  # fmt: skip
    if row.status == plans.PAUSED:
        status = plans.PAUSED
    tx.conn.execute(
        update(rollout_plans)
        .where(rollout_plans.c.id == row.id)
        .values(stage=stage, status=status, stage_started_at=tx.now, version=row.version + 1,
                updated_at=tx.now)
    )  # fmt: skip
    change = _change(
        AuditAction.ROLLOUT_PLAN_ADVANCED, ObjectType.ROLLOUT_PLAN, t, caller,
        {"version": row.version, "stage": row.stage, "status": row.status},
        {"version": row.version + 1, "stage": stage, "status": status,
         "stage_name": spec.stages[stage].name},
        row.version, f"stage {stage} ({spec.stages[stage].name})",
    )  # fmt: skip
    _audit(tx, caller, change, evidence)
    stored = _plan_row(tx.conn, t)
    assert stored is not None
    return plan_view(stored, t.flag.key, t.environment.key)


# --- used by the cycle (the system actor) -------------------------------------------------


def _target_by_ids(conn: Any, plan_row: Row[Any]) -> Target:
    from lockgate.store.tables import environments, flags, projects

    project = conn.execute(select(projects).where(projects.c.id == plan_row.project_id)).one()
    env = conn.execute(
        select(environments).where(environments.c.id == plan_row.environment_id)
    ).one()
    flag = conn.execute(select(flags).where(flags.c.id == plan_row.flag_id)).one()
    return Target(project, env, flag)


def current_config_by_ids(svc: Services, plan_row: Row[Any]) -> tuple[int, dict[str, Any]]:
    with svc.view() as conn:
        return current_config(conn, plan_row.flag_id, plan_row.environment_id)


def _fresh(conn: Connection, plan_row: Row[Any]) -> Row[Any] | None:
    return conn.execute(select(rollout_plans).where(rollout_plans.c.id == plan_row.id)).first()


def set_stage(
    svc: Services,
    caller: Caller,
    plan_row: Row[Any],
    stage: int,
    evidence: dict[str, Any],
    *,
    advance: bool = False,
) -> None:
    """Move the plan to ``stage`` once its configuration was written: an advance is audited
    with its evidence; a step back is audited by the pause that follows it."""
    with svc.change() as tx:
        t = _target_by_ids(tx.conn, plan_row)
        row = _fresh(tx.conn, plan_row)
        if row is None:
            return
        if advance:
            _record_advance(tx, caller, t, row, stage, evidence)
            return
        tx.conn.execute(
            update(rollout_plans)
            .where(rollout_plans.c.id == row.id)
            .values(stage=stage, stage_started_at=tx.now, version=row.version + 1,
                    updated_at=tx.now)
        )  # fmt: skip


def hold_plan(
    svc: Services,
    caller: Caller,
    plan_row: Row[Any],
    evidence: dict[str, Any],
    *,
    require_approval: bool = False,
) -> None:
    """A guardrail's breach stops the plan: paused, or (``require_approval``) held so that
    only a person advances it. Audited with the breach's evidence."""
    with svc.change() as tx:
        t = _target_by_ids(tx.conn, plan_row)
        row = _fresh(tx.conn, plan_row)
        if row is None:
            return
        if require_approval:
            if row.require_approval:
                return
            values: dict[str, Any] = {"require_approval": True}
            action = AuditAction.ROLLOUT_PLAN_HELD
        else:
            if row.status == plans.PAUSED:
                return
            values = {"status": plans.PAUSED}
            action = AuditAction.ROLLOUT_PLAN_PAUSED
        before = {"version": row.version, "stage": row.stage, "status": row.status,
                  "require_approval": bool(row.require_approval)}  # fmt: skip
        tx.conn.execute(
            update(rollout_plans)
            .where(rollout_plans.c.id == row.id)
            .values(**values, version=row.version + 1, updated_at=tx.now)
        )
        change = _change(
            action, ObjectType.ROLLOUT_PLAN, t, caller, before,
            {**before, **values, "version": row.version + 1},
            row.version, str(evidence.get("decision", "a guardrail is breached")),
        )  # fmt: skip
        _audit(tx, caller, change, evidence)


def note_steps(svc: Services, notes: dict[int, dict[str, Any]]) -> None:
    """Keep each plan's last decision not to advance, and why (state, not an audited
    change), in one transaction."""
    if not notes:
        return
    from sqlalchemy import bindparam

    with svc.database.write() as conn:
        conn.execute(
            update(rollout_plans)
            .where(rollout_plans.c.id == bindparam("plan_id"))
            .values(last_step=bindparam("checks")),
            [{"plan_id": k, "checks": v} for k, v in notes.items()],
        )


def reconcile(
    svc: Services,
    caller: Caller,
    plan_row: Row[Any],
    spec: model.PlanSpec,
    config: dict[str, Any],
    stable: str,
) -> bool:
    """A person's change (direct, or an approved change request) made the configuration
    exactly the next stage's: the plan follows. ``True`` when it moved."""
    following = plan_row.stage + 1
    if following >= len(spec.stages):
        return False
    wanted = plans.stage_config(config, spec.stages[following], spec.variation, stable)
    if any(config.get(k) != v for k, v in wanted.items()):
        return False
    with svc.change() as tx:
        t = _target_by_ids(tx.conn, plan_row)
        row = _fresh(tx.conn, plan_row)
        if row is None or row.stage != plan_row.stage:
            return False
        _record_advance(
            tx, caller, t, row, following,
            {"by": "a change to the configuration that made it the next stage's"},
        )  # fmt: skip
    return True
