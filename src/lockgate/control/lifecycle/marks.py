"""Lifecycle marks: cleanup due (the ``cleanup-rules`` job), archived, why permanent.

The job checks every temporary, unarchived behavior that has a cleanup rule; when the rule
is met it marks the behavior cleanup due through the governed path as ``system:cleanup``
(the mark changes nothing that is served: the policy applies it at once), records the
rule and the facts it looked at in the audit entry (``flag:cleanup_due``), and queues the
``cleanup.due`` webhook for the owner with the places the code still uses the key.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from lockgate.control.base import Caller, Services, Transaction, system_caller
from lockgate.control.evidence import webhook_outbox
from lockgate.control.governance import gate
from lockgate.control.lifecycle import coderefs, facts
from lockgate.events.catalog import EventType
from lockgate.lifecycle import Stage, derive
from lockgate.policy import postures
from lockgate.policy.changes import AuditAction, Change, ObjectType
from lockgate.policy.classify import Direction
from lockgate.store.tables import flag_lifecycle, flags, projects

__all__ = ["CLEANUP_ACTOR", "mark_due", "note_definition", "run_cleanup_rules"]

CLEANUP_ACTOR = "system:cleanup"


def _upsert(conn: Connection, flag_id: int, now: str, **values: Any) -> None:
    found = conn.execute(
        select(flag_lifecycle.c.flag_id).where(flag_lifecycle.c.flag_id == flag_id)
    ).first()
    if found is None:
        conn.execute(insert(flag_lifecycle).values(flag_id=flag_id, updated_at=now, **values))
    else:
        conn.execute(
            update(flag_lifecycle)
            .where(flag_lifecycle.c.flag_id == flag_id)
            .values(updated_at=now, **values)
        )


def note_definition(
    tx: Transaction, flag_id: int, before: dict[str, Any], after: dict[str, Any], reason: str
) -> None:
    """Keep the marks in step with an applied definition change (same transaction):
    when it was archived or restored, and why a behavior was made permanent."""
    if bool(before.get("archived")) != bool(after.get("archived")):
        _upsert(tx.conn, flag_id, tx.now, archived_at=tx.now if after.get("archived") else None)
    if after.get("lifecycle") == "permanent" and before.get("lifecycle") != "permanent":
        _upsert(tx.conn, flag_id, tx.now, permanent_reason=reason)
    elif after.get("lifecycle") == "temporary" and before.get("lifecycle") == "permanent":
        _upsert(tx.conn, flag_id, tx.now, permanent_reason=None)


def mark_due(
    svc: Services, caller: Caller, gathered: facts.Gathered, evidence: dict[str, Any]
) -> bool:
    """Mark one behavior cleanup due (``False``: archived or marked meanwhile)."""
    with svc.change() as tx:
        row = tx.conn.execute(select(flags).where(flags.c.id == gathered.row.id)).first()
        mark = tx.conn.execute(
            select(flag_lifecycle).where(flag_lifecycle.c.flag_id == gathered.row.id)
        ).first()
        if row is None or row.archived or (mark is not None and mark.cleanup_due_at):
            return False
        project = tx.conn.execute(select(projects).where(projects.c.id == row.project_id)).one()
        change = Change(
            action=AuditAction.FLAG_CLEANUP_DUE,
            object_type=ObjectType.FLAG,
            project=project.key,
            object_key=row.key,
            before={"stage": evidence["stage"]},
            after={"stage": Stage.CLEANUP_DUE.value},
            base_version=row.version,
            reason=evidence["reason"],
            actor_id=caller.actor_id,
            actor_name=caller.actor_name,
        )
        verdict = postures.decide(
            Direction.NONE, scopes=[], posture=gate.posture_of(project), system=caller.automatic
        )
        gate.govern(tx, caller, project, change, verdict, environment_ids=[])
        refs = coderefs.references_by_key(tx.conn, project.id, [row.key]).get(row.key, [])
        recorded = evidence | {"policy": verdict.document(), "code_references": len(refs)}
        _upsert(tx.conn, row.id, tx.now, cleanup_due_at=tx.now, cleanup_evidence=recorded)
        entry = tx.record(
            caller,
            {
                "action": change.action.value,
                "object_type": change.object_type.value,
                "object_key": row.key,
                "project": project.key,
                "before": change.before,
                "after": change.after,
                "reason": change.reason,
                "risk_tier": row.risk_tier,
                "evidence": recorded,
                "refs": {},
            },
        )
        webhook_outbox.emit(
            tx,
            EventType.CLEANUP_DUE,
            project.key,
            {
                "behavior": row.key,
                "owner": row.owner,
                "rule": evidence["rule"],
                "reason": change.reason,
                "evidence": evidence["check"],
                "code_references": refs[:100],
                "code_reference_count": len(refs),
                "audit_id": entry.id,
            },
        )
    return True


def run_cleanup_rules(svc: Services, now: datetime | None = None) -> int:
    """Check every temporary behavior's cleanup rule; mark the met ones. Returns how many."""
    moment = now or svc.clock()
    caller = system_caller(CLEANUP_ACTOR, source="system")
    marked = 0
    with svc.view() as conn:
        project_ids = [p.id for p in conn.execute(select(projects.c.id).order_by(projects.c.id))]
    for project_id in project_ids:
        with svc.view() as conn:
            rows = [
                r
                for r in facts.project_flags(conn, project_id, archived=False)
                if r.lifecycle == "temporary" and (r.contract or {}).get("cleanup_rule")
            ]
            found = facts.gather(conn, project_id, rows, moment, stale_days=svc.stale_days)
        for g in found:
            if g.facts.cleanup_due_at is not None or g.facts.rule is None:
                continue
            lifecycle = derive(g.facts, moment)
            check = lifecycle.rule_check
            if check is None or not check.met:
                continue
            evidence = {
                "stage": lifecycle.stage.value,
                "reason": f"cleanup rule met: {check.reason}",
                "rule": g.facts.rule.document(),
                "check": dict(check.evidence),
            }
            marked += int(mark_due(svc, caller, g, evidence))
    return marked
