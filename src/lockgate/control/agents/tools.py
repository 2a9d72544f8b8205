"""The tool registry and the tool tier policy of a project, on the governed change path.

Every write plans a typed :class:`~lockgate.policy.changes.Change`, classifies it with the
pure :mod:`lockgate.policy.tools` and lets the posture decide: reductions (denying a tool,
raising its risk class, removing it, tightening its budget or the policy) apply at once;
expansions (registering a tool, lifting a denial, loosening the policy) apply, become a
change request or are refused, as for any behavior the project has. Each applied change
bumps the snapshot of every environment of the project, so running SDKs get it at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update

from lockgate.control import lookup
from lockgate.control.base import Caller, Services, Transaction
from lockgate.control.configuration import snapshots
from lockgate.control.governance import gate
from lockgate.control.governance.gate import Deferred
from lockgate.control.lookup import check_key, check_version
from lockgate.engine import SNAPSHOT_FORMAT, Problem, decode, validate
from lockgate.engine.codec import decode_tools
from lockgate.engine.tools import normalize_tool_policy, policy_table
from lockgate.errors import Conflict, FieldProblem, InvalidInput, NotFound
from lockgate.policy import postures
from lockgate.policy.access import Action
from lockgate.policy.changes import AuditAction, Change, ObjectType
from lockgate.policy.classify import Classification
from lockgate.policy.tools import classify_policy_change, classify_tool_change
from lockgate.store.tables import environments, flags, projects, segments, tools

__all__ = [
    "FIELDS",
    "apply_policy_change",
    "apply_tool_change",
    "deny_tool",
    "get_policy",
    "get_tool",
    "list_tools",
    "register_tool",
    "remove_tool",
    "update_policy",
    "update_tool",
]

FIELDS = ("risk", "description", "deny", "budget")


def tool_view(row: Row[Any]) -> dict[str, Any]:
    return {
        "key": row.key,
        "risk": row.risk,
        "description": row.description,
        "deny": list(row.deny or []),
        "budget": row.budget,
        "version": row.version,
        "created_at": row.created_at,
        "created_by": row.created_by,
        "updated_at": row.updated_at,
    }


def _fields(values: Mapping[str, Any], base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    base = base or {"risk": None, "description": "", "deny": [], "budget": None}
    return {f: values[f] if f in values else base[f] for f in FIELDS}


def _check_tool(conn: Connection, project_id: int, key: str, fields: dict[str, Any]) -> None:
    """Refuse a tool whose fields would make the snapshot invalid, naming the field."""
    problems: list[Problem] = []
    doc = {
        "risk": fields["risk"],
        "description": fields["description"],
        "deny": fields["deny"],
        "budget": fields["budget"],
    }
    if doc["budget"] is None:
        del doc["budget"]
    decoded = decode_tools({key: doc}, problems)
    if not problems:
        seg_keys = conn.execute(select(segments.c.key).where(segments.c.project_id == project_id))
        stub = decode(
            {
                "format": SNAPSHOT_FORMAT,
                "version": 0,
                "flags": {},
                "segments": {k: {"key": k, "version": 1} for (k,) in seg_keys},
            }
        )
        stub.tools.update(decoded)
        problems = validate(stub)
    if problems:
        prefix = f"tools.{key}."
        raise InvalidInput(
            f"invalid tool {key!r}",
            [FieldProblem(p.path.removeprefix(prefix), p.message) for p in problems],
        )
    if len({d["id"] for d in fields["deny"]}) != len(fields["deny"]):
        raise InvalidInput(
            f"invalid tool {key!r}", [FieldProblem("deny", "denial ids must be unique")]
        )


def _row(conn: Connection, project_id: int, key: str) -> Row[Any] | None:
    return conn.execute(
        select(tools).where(tools.c.project_id == project_id, tools.c.key == key)
    ).first()


def _existing(conn: Connection, project: Row[Any], key: str) -> Row[Any]:
    row = _row(conn, project.id, key)
    if row is None:
        raise NotFound(f"no tool {key!r} in project {project.key!r}")
    return row


def _environment_rows(conn: Connection, project_id: int) -> list[Row[Any]]:
    return list(
        conn.execute(select(environments).where(environments.c.project_id == project_id)).all()
    )


def _verdict(
    conn: Connection, project: Row[Any], change: Change, classification: Classification
) -> postures.Verdict:
    """The posture's verdict: a tool reaches every behavior of the project, everywhere."""
    env_rows = _environment_rows(conn, project.id)
    behaviors = conn.execute(
        select(flags.c.tags, flags.c.risk_tier, flags.c.owner).where(
            flags.c.project_id == project.id, flags.c.archived.is_(False)
        )
    ).all()
    tiers = sorted({b.risk_tier for b in behaviors})
    scopes = gate.scopes_for(tiers, env_rows)
    posture = gate.posture_of(project)
    if classification.is_expansion:
        gate.require_reason(change, posture, scopes, tiers)
    return postures.decide(
        classification.direction,
        reasons=classification.reasons,
        scopes=scopes,
        posture=posture,
        frozen_by=gate.frozen_by(conn, [e.id for e in env_rows], behaviors),
    )


def _govern(
    tx: Transaction,
    caller: Caller,
    project: Row[Any],
    change: Change,
    classification: Classification,
    plan: bool,
) -> tuple[Deferred | None, dict[str, Any]]:
    verdict = _verdict(tx.conn, project, change, classification)
    deferred = gate.govern(tx, caller, project, change, verdict, environment_ids=[], plan=plan)
    evidence = {
        "policy": verdict.document(),
        "classification": gate.classification_note(classification),
    }
    return deferred, evidence


def _policy_of(project: Row[Any]) -> dict[str, Any]:
    table, _ = normalize_tool_policy(project.tool_policy or {})
    return table


# -- reads ------------------------------------------------------------------------------


def list_tools(svc: Services, caller: Caller, project_key: str) -> dict[str, Any]:
    with svc.view() as conn:
        project = caller.project(conn, project_key, Action.READ)
        rows = conn.execute(
            select(tools).where(tools.c.project_id == project.id).order_by(tools.c.key)
        ).all()
        return {"items": [tool_view(r) for r in rows], "policy": _policy_view(project)}


def get_tool(svc: Services, caller: Caller, project_key: str, key: str) -> dict[str, Any]:
    with svc.view() as conn:
        project = caller.project(conn, project_key, Action.READ)
        return tool_view(_existing(conn, project, key))


def _policy_view(project: Row[Any]) -> dict[str, Any]:
    overrides = _policy_of(project)
    return {
        "project": project.key,
        "overrides": overrides,
        "version": project.tool_policy_version,
        "effective": policy_table(overrides),
    }


def get_policy(svc: Services, caller: Caller, project_key: str) -> dict[str, Any]:
    with svc.view() as conn:
        return _policy_view(caller.project(conn, project_key, Action.READ))


# -- tool writes ------------------------------------------------------------------------


def register_tool(
    svc: Services,
    caller: Caller,
    project_key: str,
    values: Mapping[str, Any],
    reason: str = "",
    *,
    plan: bool = False,
) -> dict[str, Any] | Deferred:
    """Register a tool (an expansion: the posture decides)."""
    key = str(values.get("key", ""))
    check_key(key)
    fields = _fields(values)
    with svc.change() as tx:
        project = caller.project(tx.conn, project_key, Action.WRITE_PROJECT_OBJECT)
        if _row(tx.conn, project.id, key) is not None:
            raise Conflict(f"tool {key!r} already exists in project {project_key!r}")
        _check_tool(tx.conn, project.id, key, fields)
        change = _change(
            caller, AuditAction.TOOL_REGISTERED, project_key, key, None, fields, 0, reason
        )
        classification = classify_tool_change(None, fields, _policy_of(project))
        deferred, evidence = _govern(tx, caller, project, change, classification, plan)
        if deferred is not None:
            return deferred
        return _apply(tx, caller, project, None, change, evidence)


def update_tool(
    svc: Services,
    caller: Caller,
    project_key: str,
    key: str,
    values: Mapping[str, Any],
    expected_version: int | None = None,
    reason: str = "",
    *,
    plan: bool = False,
    evidence: Mapping[str, Any] | None = None,
    refs: Mapping[str, Any] | None = None,
) -> dict[str, Any] | Deferred:
    """Change a tool's risk class, description, denials or budget. ``evidence`` and
    ``refs`` go into the audit entry (a guardrail's numbers, its key)."""
    with svc.change() as tx:
        project = caller.project(tx.conn, project_key, Action.WRITE_PROJECT_OBJECT)
        row = _existing(tx.conn, project, key)
        check_version(row.version, expected_version, f"tool {key!r}")
        before = _fields(tool_view(row))
        after = _fields(values, before)
        if after == before:
            return tool_view(row)
        _check_tool(tx.conn, project.id, key, after)
        action = AuditAction.TOOL_UPDATED
        if len(after["deny"]) > len(before["deny"]) and _only_adds_denials(before, after):
            action = AuditAction.TOOL_DENIED
        change = _change(caller, action, project_key, key, before, after, row.version, reason)
        if refs:
            change = replace(change, refs=dict(refs))
        classification = classify_tool_change(before, after, _policy_of(project))
        deferred, decided = _govern(tx, caller, project, change, classification, plan)
        if deferred is not None:
            return deferred
        return _apply(tx, caller, project, row, change, {**(evidence or {}), **decided})


def _only_adds_denials(before: Mapping[str, Any], after: Mapping[str, Any]) -> bool:
    same = all(before[f] == after[f] for f in FIELDS if f != "deny")
    return same and all(d in after["deny"] for d in before["deny"])


def deny_tool(
    svc: Services,
    caller: Caller,
    project_key: str,
    key: str,
    *,
    denial_id: str = "everyone",
    clauses: list[dict[str, Any]] | None = None,
    description: str = "",
    reason: str = "",
    evidence: Mapping[str, Any] | None = None,
    refs: Mapping[str, Any] | None = None,
) -> dict[str, Any] | Deferred:
    """Deny one tool to everyone (no clauses) or to an audience: a reduction, at once."""
    check_key(denial_id, "id")
    with svc.view() as conn:
        project = caller.project(conn, project_key, Action.WRITE_PROJECT_OBJECT)
        row = _existing(conn, project, key)
    deny = [d for d in (row.deny or []) if d["id"] != denial_id]
    entry: dict[str, Any] = {"id": denial_id, "clauses": list(clauses or [])}
    if description:
        entry["description"] = description
    if any(d["id"] == denial_id for d in (row.deny or [])):
        raise Conflict(f"tool {key!r} already has a denial {denial_id!r}")
    return update_tool(
        svc,
        caller,
        project_key,
        key,
        {"deny": [*deny, entry]},
        row.version,
        reason,
        evidence=evidence,
        refs=refs,
    )


def remove_tool(
    svc: Services,
    caller: Caller,
    project_key: str,
    key: str,
    expected_version: int | None = None,
    reason: str = "",
) -> None:
    """Remove a tool from the registry: calls to it are denied (a reduction)."""
    with svc.change() as tx:
        project = caller.project(tx.conn, project_key, Action.WRITE_PROJECT_OBJECT)
        row = _existing(tx.conn, project, key)
        check_version(row.version, expected_version, f"tool {key!r}")
        before = _fields(tool_view(row))
        change = _change(
            caller, AuditAction.TOOL_REMOVED, project_key, key, before, None, row.version, reason
        )
        classification = classify_tool_change(before, None, _policy_of(project))
        _, evidence = _govern(tx, caller, project, change, classification, False)
        _apply(tx, caller, project, row, change, evidence)


def _change(
    caller: Caller,
    action: AuditAction,
    project_key: str,
    key: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    base_version: int,
    reason: str,
) -> Change:
    return Change(
        action=action,
        object_type=ObjectType.TOOL,
        project=project_key,
        object_key=key,
        before=before,
        after=after,
        base_version=base_version,
        reason=reason,
        actor_id=caller.actor_id,
        actor_name=caller.actor_name,
    )


def _apply(
    tx: Transaction,
    caller: Caller,
    project: Row[Any],
    row: Row[Any] | None,
    change: Change,
    evidence: dict[str, Any],
) -> dict[str, Any]:
    after = dict(change.after) if change.after is not None else None
    key = change.object_key
    if row is None and after is not None:
        tx.conn.execute(
            insert(tools).values(
                project_id=project.id,
                key=key,
                version=1,
                created_at=tx.now,
                created_by=caller.actor_name,
                updated_at=tx.now,
                **after,
            )
        )
    elif row is not None and after is not None:
        tx.conn.execute(
            update(tools)
            .where(tools.c.id == row.id)
            .values(**after, version=row.version + 1, updated_at=tx.now)
        )
    elif row is not None:
        tx.conn.execute(delete(tools).where(tools.c.id == row.id))
    current = _row(tx.conn, project.id, key)
    view = None if current is None else tool_view(current)
    snapshots.bump(tx, [e.id for e in _environment_rows(tx.conn, project.id)])
    tx.record(
        caller,
        {
            "action": change.action.value,
            "object_type": ObjectType.TOOL.value,
            "object_key": key,
            "project": change.project,
            "before": None if row is None else tool_view(row),
            "after": view,
            "reason": change.reason,
            "evidence": evidence,
            "refs": dict(change.refs),
        },
    )
    return view or {"key": key, "removed": True}


def apply_tool_change(
    tx: Transaction, caller: Caller, change: Change, evidence: dict[str, Any]
) -> dict[str, Any]:
    """Apply an approved tool change (from a change request) if nothing moved."""
    project = caller.project(tx.conn, change.project, Action.WRITE_PROJECT_OBJECT)
    row = _row(tx.conn, project.id, change.object_key)
    current_version = 0 if row is None else row.version
    if current_version != change.base_version:
        raise gate.target_moved(
            change, current_version, None if row is None else _fields(tool_view(row))
        )
    return _apply(tx, caller, project, row, change, evidence)


# -- the tool policy --------------------------------------------------------------------


def update_policy(
    svc: Services,
    caller: Caller,
    project_key: str,
    overrides: object,
    expected_version: int | None = None,
    reason: str = "",
    *,
    plan: bool = False,
) -> dict[str, Any] | Deferred:
    """Replace the project's tool policy overrides (``{}``: the defaults)."""
    table, problems = normalize_tool_policy(overrides)
    if problems:
        raise InvalidInput(
            "invalid tool policy", [FieldProblem(path, message) for path, message in problems]
        )
    with svc.change() as tx:
        project = caller.project(tx.conn, project_key, Action.ADMIN_PROJECT)
        check_version(
            project.tool_policy_version, expected_version, f"tool policy of {project_key!r}"
        )
        before = _policy_of(project)
        if table == before:
            return _policy_view(project)
        change = Change(
            action=AuditAction.TOOL_POLICY_UPDATED,
            object_type=ObjectType.PROJECT,
            project=project_key,
            object_key=project_key,
            before=before,
            after=table,
            base_version=project.tool_policy_version,
            reason=reason,
            actor_id=caller.actor_id,
            actor_name=caller.actor_name,
        )
        classification = classify_policy_change(before, table)
        deferred, evidence = _govern(tx, caller, project, change, classification, plan)
        if deferred is not None:
            return deferred
        return _apply_policy(tx, caller, project, change, evidence)


def _apply_policy(
    tx: Transaction, caller: Caller, project: Row[Any], change: Change, evidence: dict[str, Any]
) -> dict[str, Any]:
    tx.conn.execute(
        update(projects)
        .where(projects.c.id == project.id)
        .values(
            tool_policy=dict(change.after or {}) or None,
            tool_policy_version=project.tool_policy_version + 1,
        )
    )
    snapshots.bump(tx, [e.id for e in _environment_rows(tx.conn, project.id)])
    row = lookup.project(tx.conn, change.project)
    tx.record(
        caller,
        {
            "action": change.action.value,
            "object_type": ObjectType.PROJECT.value,
            "object_key": change.project,
            "project": change.project,
            "before": change.before,
            "after": _policy_of(row),
            "reason": change.reason,
            "evidence": evidence,
            "refs": dict(change.refs),
        },
    )
    return _policy_view(row)


def apply_policy_change(
    tx: Transaction, caller: Caller, change: Change, evidence: dict[str, Any]
) -> dict[str, Any]:
    project = caller.project(tx.conn, change.project, Action.ADMIN_PROJECT)
    if project.tool_policy_version != change.base_version:
        raise gate.target_moved(change, project.tool_policy_version, _policy_of(project))
    return _apply_policy(tx, caller, project, change, evidence)
