"""Incident mode: every behavior in scope serves its fallback, and nothing in scope expands.

Starting an incident is a reduction and applies at once (like the kill switch, it never
waits for an approval). It puts the incident's id on the configuration of every behavior
in scope in that environment (in place: a mark, not a new version of the configuration),
all in one transaction with one audit entry and one snapshot change — and the engine
serves their off variation with reason ``INCIDENT``. While it is active the policy
refuses every expansion of a behavior in scope
(:func:`lockgate.control.governance.gate.frozen_by`): direct writes, change-request and
scheduled applies, reverts, segment edits, and anything built on them.

Ending one removes its id again, and only its id: the configuration underneath was never
touched (reductions made during the incident stay), a kill stays, and a behavior that
another active incident covers keeps serving its fallback. Ending needs the ``approver``
role in that environment: it lifts a freeze and brings exposure back, so it is decided by
a person who may approve expansions there (docs/adr/0009-reversal-overlays.md).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, cast

from sqlalchemy import Row, insert, select, update

from lockgate.control import lookup
from lockgate.control.base import Caller, Services, Transaction
from lockgate.control.configuration import snapshots
from lockgate.control.governance import gate
from lockgate.engine import decode
from lockgate.errors import Conflict, FieldProblem, InvalidInput, NotFound
from lockgate.policy import postures
from lockgate.policy.access import Action
from lockgate.policy.changes import AuditAction, Change, ObjectType
from lockgate.policy.classify import classify_snapshots
from lockgate.policy.incidents import IncidentScope, parse_scope
from lockgate.store.tables import environments, flag_configs, flags, incidents

__all__ = ["end_incident", "get_incident", "list_incidents", "start_incident"]

STATES = ("active", "ended")


def _reason(reason: str, what: str) -> None:
    if not reason.strip():
        raise InvalidInput(
            f"{what} needs a reason", [FieldProblem("reason", f"say why ({what} is audited)")]
        )


def _in_scope(
    tx: Transaction,
    environment_id: int,
    project_id: int,
    scope: IncidentScope,
    *,
    archived: bool = False,
) -> list[Row[Any]]:
    """The behaviors (with their configuration there) the scope covers; ``archived``: the
    archived ones too (an incident's end lifts its mark from them as well)."""
    query = (
        select(
            flags.c.id,
            flags.c.key,
            flags.c.risk_tier,
            flags.c.tags,
            flags.c.owner,
            flag_configs.c.id.label("config_id"),
            flag_configs.c.version,
            flag_configs.c.config,
        )
        .join(flag_configs, flag_configs.c.flag_id == flags.c.id)
        .where(flags.c.project_id == project_id, flag_configs.c.environment_id == environment_id)
        .order_by(flags.c.key)
    )
    if not archived:
        query = query.where(flags.c.archived.is_(False))
    rows = tx.conn.execute(query).all()
    return [
        cast("Row[Any]", r)
        for r in rows
        if scope.covers(tags=r.tags or (), risk_tier=r.risk_tier, owner=r.owner)
    ]


def start_incident(
    svc: Services,
    caller: Caller,
    project_key: str,
    env_key: str,
    scope_fields: dict[str, Any],
    reason: str,
    *,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Start an incident in one environment (``dry_run``: say what would fall back)."""
    _reason(reason, "an incident")
    scope, problems = parse_scope(scope_fields)
    if problems:
        raise InvalidInput(
            "invalid incident scope", [FieldProblem(p.field, p.message) for p in problems]
        )
    with svc.change() as tx:
        project = caller.project(tx.conn, project_key, Action.READ)
        env = lookup.environment(tx.conn, project, env_key)
        caller.authorize(
            Action.WRITE_ENVIRONMENT_CONFIG, project.id, env.id, what=f"project {project_key!r}"
        )
        covered = _in_scope(tx, env.id, project.id, scope)
        preview = [_preview(r) for r in covered]
        if dry_run:
            return {
                "dry_run": True,
                "environment": env_key,
                "scope": scope.document(),
                "would_fall_back": preview,
            }
        inserted = tx.conn.execute(
            insert(incidents).values(
                project_id=project.id,
                environment_id=env.id,
                scope=scope.document(),
                state="active",
                reason=reason,
                covered=[r.key for r in covered],
                started_by=caller.actor_name,
                started_at=tx.now,
            )
        ).inserted_primary_key
        assert inserted is not None
        incident_id = int(inserted[0])
        label = str(incident_id)
        change = Change(
            action=AuditAction.INCIDENT_STARTED,
            object_type=ObjectType.INCIDENT,
            project=project_key,
            environment=env_key,
            object_key=label,
            before=None,
            after={"scope": scope.document(), "covered": [r.key for r in covered]},
            base_version=0,
            reason=reason,
            actor_id=caller.actor_id,
            actor_name=caller.actor_name,
        )
        verdict = _decide(tx, env, project, covered, label, adding=True)
        tx.record(
            caller,
            {
                "action": change.action.value,
                "object_type": "incident",
                "object_key": label,
                "project": project_key,
                "environment": env_key,
                "after": change.after,
                "reason": reason,
                "evidence": {"policy": verdict.document(), "serving_fallback": preview},
                "refs": {"incident": incident_id},
            },
        )
        _rewrite(tx, env, covered, label, adding=True)
        return _view(_load(tx, project.id, incident_id), env_key)


def _preview(row: Row[Any]) -> dict[str, Any]:
    config = row.config or {}
    return {
        "flag": row.key,
        "risk_tier": row.risk_tier,
        "fallback": config.get("off_variation"),
        "already": "killed"
        if config.get("killed")
        else ("incident" if config.get("incidents") else None),
    }


def _decide(
    tx: Transaction,
    env: Row[Any],
    project: Row[Any],
    rows: list[Row[Any]],
    label: str,
    *,
    adding: bool,
) -> postures.Verdict:
    """Classify the change over the environment's snapshot and ask the policy."""
    before = decode(snapshots.build_snapshot(tx.conn, env.id))
    changed = {}
    for row in rows:
        flag = before.flags.get(row.key)
        if flag is None:
            continue
        marks = tuple(i for i in flag.incidents if i != label)
        changed[row.key] = replace(flag, incidents=(*marks, label) if adding else marks)
    after = replace(before, flags={**before.flags, **changed})
    found = classify_snapshots(before, after, flags=tuple(changed))
    if not adding:
        # Ending lifts a freeze and restores approved exposure: the approver who ends it
        # decides (the caller was authorized as one), as for a change request.
        return postures.Verdict(
            postures.Outcome.APPLY,
            "incident end: decided by an approver of the environment",
            0,
            found.direction,
            found.reasons,
        )
    scopes = gate.scopes_for([r.risk_tier for r in rows], [env])
    return postures.decide(
        found.direction,
        reasons=found.reasons,
        scopes=scopes,
        posture=gate.posture_of(project),
        reversal=True,  # starting an incident never waits
    )


def _rewrite(
    tx: Transaction, env: Row[Any], rows: list[Row[Any]], label: str, *, adding: bool
) -> list[str]:
    """Add (or remove) the incident's mark on each configuration."""
    changed = []
    for row in rows:
        config = dict(row.config or {})
        marks = [i for i in config.get("incidents") or [] if i != label]
        if adding:
            marks.append(label)
        elif len(marks) == len(config.get("incidents") or []):
            continue  # not marked (the flag was re-created or never covered)
        if marks:
            config["incidents"] = marks
        else:
            config.pop("incidents", None)
        # In place, at the same version: the mark is not an edit of the configuration (a
        # change request proposed before the incident still applies once it ends), and the
        # audit entry records it.
        tx.conn.execute(
            update(flag_configs).where(flag_configs.c.id == row.config_id).values(config=config)
        )
        changed.append(row.key)
    if changed:
        snapshots.bump(tx, [env.id], flag_keys=changed)
    return changed


def end_incident(
    svc: Services, caller: Caller, project_key: str, incident_id: int, reason: str
) -> dict[str, Any]:
    """End an active incident: what it covered serves what it served before it."""
    _reason(reason, "ending an incident")
    with svc.change() as tx:
        project = caller.project(tx.conn, project_key, Action.READ)
        row = _load(tx, project.id, incident_id)
        env = tx.conn.execute(
            select(environments).where(environments.c.id == row.environment_id)
        ).one()
        caller.authorize(Action.APPROVE, project.id, env.id, what=f"incident {incident_id}")
        if row.state != "active":
            raise Conflict(
                f"incident {incident_id} already ended ({row.ended_at}, by {row.ended_by})",
                state=row.state,
            )
        label = str(incident_id)
        covered = [
            r
            for r in _in_scope(tx, env.id, project.id, IncidentScope(), archived=True)
            if label in ((r.config or {}).get("incidents") or [])
        ]
        verdict = _decide(tx, env, project, covered, label, adding=False)
        tx.record(
            caller,
            {
                "action": AuditAction.INCIDENT_ENDED.value,
                "object_type": "incident",
                "object_key": label,
                "project": project_key,
                "environment": env.key,
                "before": {"state": "active", "covered": list(row.covered)},
                "after": {"state": "ended", "restored": [r.key for r in covered]},
                "reason": reason,
                "evidence": {"policy": verdict.document()},
                "refs": {"incident": incident_id},
            },
        )
        _rewrite(tx, env, covered, label, adding=False)
        tx.conn.execute(
            update(incidents)
            .where(incidents.c.id == incident_id)
            .values(state="ended", ended_by=caller.actor_name, ended_at=tx.now, end_reason=reason)
        )
        return _view(_load(tx, project.id, incident_id), env.key)


def _load(tx: Transaction, project_id: int, incident_id: int) -> Row[Any]:
    row = tx.conn.execute(
        select(incidents).where(incidents.c.id == incident_id, incidents.c.project_id == project_id)
    ).first()
    if row is None:
        raise NotFound(f"incident {incident_id} not found")
    return row


def _view(row: Row[Any], env_key: str) -> dict[str, Any]:
    scope, _ = parse_scope(row.scope or {})
    return {
        "id": row.id,
        "environment": env_key,
        "state": row.state,
        "scope": scope.document(),
        "scope_text": scope.describe(),
        "covered": list(row.covered or []),
        "reason": row.reason,
        "started_by": row.started_by,
        "started_at": row.started_at,
        "ended_by": row.ended_by,
        "ended_at": row.ended_at,
        "end_reason": row.end_reason,
    }


def get_incident(
    svc: Services, caller: Caller, project_key: str, incident_id: int
) -> dict[str, Any]:
    with svc.view() as conn:
        project = caller.project(conn, project_key, Action.READ)
        row = conn.execute(
            select(incidents, environments.c.key.label("env_key"))
            .join(environments, environments.c.id == incidents.c.environment_id)
            .where(incidents.c.id == incident_id, incidents.c.project_id == project.id)
        ).first()
        if row is None:
            raise NotFound(f"incident {incident_id} not found")
        return _view(row, row.env_key)


def list_incidents(
    svc: Services,
    caller: Caller,
    project_key: str,
    *,
    state: str | None = None,
    env_key: str | None = None,
) -> dict[str, Any]:
    if state is not None and state not in STATES:
        raise InvalidInput("bad state", [FieldProblem("state", "active or ended")])
    with svc.view() as conn:
        project = caller.project(conn, project_key, Action.READ)
        query = (
            select(incidents, environments.c.key.label("env_key"))
            .join(environments, environments.c.id == incidents.c.environment_id)
            .where(incidents.c.project_id == project.id)
            .order_by(incidents.c.id.desc())
            .limit(500)
        )
        if state is not None:
            query = query.where(incidents.c.state == state)
        if env_key is not None:
            env = lookup.environment(conn, project, env_key)
            query = query.where(incidents.c.environment_id == env.id)
        return {"items": [_view(r, r.env_key) for r in conn.execute(query).all()]}
