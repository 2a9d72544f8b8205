"""Segments: reusable audiences shared by every environment of a project.

A segment (``included`` / ``excluded`` keys on one attribute, then rules) is defined once
per project and appears in every environment's snapshot. Every write is validated by
building each environment's snapshot with the engine — so a bad clause, a reference to an
unknown segment, a cycle, or deleting a segment a flag still uses is refused naming the
field — and commits with its audit entry and a new snapshot version of every environment.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, delete, func, insert, or_, select, update

from lockgate.control import lookup
from lockgate.control.base import Caller, Services, Transaction
from lockgate.control.configuration import snapshots
from lockgate.control.governance import gate
from lockgate.control.governance.gate import Deferred
from lockgate.control.lookup import check_key, check_version
from lockgate.engine import SNAPSHOT_FORMAT, decode
from lockgate.errors import Conflict
from lockgate.policy import postures
from lockgate.policy.access import Action
from lockgate.policy.changes import AuditAction, Change, ObjectType
from lockgate.policy.classify import classify_snapshots, most_severe
from lockgate.policy.postures import Verdict
from lockgate.store.tables import environments, flags, segments

__all__ = [
    "FIELDS",
    "create_segment",
    "delete_segment",
    "get_segment",
    "list_segments",
    "segment_view",
    "update_segment",
]

FIELDS = ("name", "description", "attribute", "included", "excluded", "rules")


def segment_view(row: Row[Any]) -> dict[str, Any]:
    return {
        "key": row.key,
        "name": row.name,
        "description": row.description,
        "attribute": row.attribute,
        "included": row.included,
        "excluded": row.excluded,
        "rules": row.rules,
        "version": row.version,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "created_by": row.created_by,
    }


def _document(key: str, version: int, values: dict[str, Any]) -> dict[str, Any]:
    """A segment in snapshot form, from its field values."""
    return snapshots.segment_fields_document(key, {**values, "version": version})


def _environment_ids(conn: Connection, project_id: int) -> list[int]:
    rows = conn.execute(
        select(environments.c.id).where(environments.c.project_id == project_id)
    ).all()
    return [r.id for r in rows]


def _segments_only(conn: Connection, project_id: int) -> dict[str, Any]:
    """The project's segments as a snapshot without flags (for projects with no environment)."""
    rows = conn.execute(select(segments).where(segments.c.project_id == project_id)).all()
    return {
        "format": SNAPSHOT_FORMAT,
        "project": "",
        "environment": "",
        "version": 0,
        "flags": {},
        "segments": {r.key: snapshots.segment_document(r) for r in rows},
    }


def _check(
    conn: Connection, project_id: int, env_ids: list[int], key: str, doc: dict[str, Any] | None
) -> None:
    """Refuse the change unless every environment's snapshot stays valid with it."""
    focus = f"segments.{key}"
    for env_id in env_ids:
        document = snapshots.build_snapshot(conn, env_id, override_segment=(key, doc))
        snapshots.check_snapshot(document, focus)
    if not env_ids:
        document = _segments_only(conn, project_id)
        if doc is None:
            document["segments"].pop(key, None)
        else:
            document["segments"][key] = doc
        snapshots.check_snapshot(document, focus)


def _record(
    tx: Transaction,
    caller: Caller,
    action: AuditAction,
    project_key: str,
    key: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    reason: str,
) -> None:
    tx.record(
        caller,
        {
            "action": action.value,
            "object_type": "segment",
            "object_key": key,
            "project": project_key,
            "before": before,
            "after": after,
            "reason": reason,
        },
    )


def _initial_values(key: str, values: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": values.get("name") or key,
        "description": values.get("description", ""),
        "attribute": values.get("attribute", "key"),
        "included": list(values.get("included", [])),
        "excluded": list(values.get("excluded", [])),
        "rules": list(values.get("rules", [])),
    }


def create_segment(
    svc: Services, caller: Caller, project_key: str, values: dict[str, Any], reason: str = ""
) -> dict[str, Any]:
    key = values["key"]
    check_key(key)
    fields = _initial_values(key, values)
    with svc.change() as tx:
        project = caller.project(tx.conn, project_key, Action.WRITE_PROJECT_OBJECT)
        if tx.conn.execute(
            select(segments.c.id).where(segments.c.project_id == project.id, segments.c.key == key)
        ).first():
            raise Conflict(f"segment {key!r} already exists in project {project_key!r}")
        env_ids = _environment_ids(tx.conn, project.id)
        _check(tx.conn, project.id, env_ids, key, _document(key, 1, fields))
        tx.conn.execute(
            insert(segments).values(
                project_id=project.id,
                key=key,
                version=1,
                created_at=tx.now,
                updated_at=tx.now,
                created_by=caller.actor_name,
                **fields,
            )
        )
        view = segment_view(lookup.segment(tx.conn, project, key))
        snapshots.bump(tx, env_ids, segment_keys=[key])
        _record(tx, caller, AuditAction.SEGMENT_CREATED, project_key, key, None, view, reason)
    return view


def list_segments(
    svc: Services,
    caller: Caller,
    project_key: str,
    *,
    text: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> lookup.Page:
    limit, offset = lookup.page_args(limit, cursor)
    with svc.view() as conn:
        project = caller.project(conn, project_key, Action.READ)
        where = [segments.c.project_id == project.id]
        if text:
            needle = text.lower()
            where.append(
                or_(
                    *(
                        func.lower(column).contains(needle, autoescape=True)
                        for column in (segments.c.key, segments.c.name, segments.c.description)
                    )
                )
            )
        total = conn.execute(select(func.count()).select_from(segments).where(*where)).scalar_one()
        rows = conn.execute(
            select(segments).where(*where).order_by(segments.c.key).offset(offset).limit(limit)
        ).all()
    return lookup.make_page([segment_view(r) for r in rows], limit, offset, total)


def get_segment(svc: Services, caller: Caller, project_key: str, key: str) -> dict[str, Any]:
    with svc.view() as conn:
        project = caller.project(conn, project_key, Action.READ)
        return segment_view(lookup.segment(conn, project, key))


def update_segment(
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
    """Change some of a segment's fields (a new version of it, in every environment).

    Governed for every behavior that uses the segment: a wider segment widens them all,
    and the strictest posture among them applies.
    """
    with svc.change() as tx:
        project = caller.project(tx.conn, project_key, Action.WRITE_PROJECT_OBJECT)
        row = lookup.segment(tx.conn, project, key)
        check_version(row.version, expected_version, f"segment {key!r}")
        before = segment_view(row)
        fields = {name: before[name] for name in FIELDS} | {
            k: v for k, v in changes.items() if k in FIELDS
        }
        if all(fields[name] == before[name] for name in FIELDS):
            return before
        change = Change(
            action=AuditAction.SEGMENT_UPDATED,
            object_type=ObjectType.SEGMENT,
            project=project_key,
            object_key=key,
            before={name: before[name] for name in FIELDS},
            after=fields,
            base_version=row.version,
            reason=reason,
            actor_id=caller.actor_id,
            actor_name=caller.actor_name,
        )
        verdict, evidence, env_ids, tiers = _judge_segment(
            tx, project, key, row.version + 1, fields
        )
        gate.require_reason(change, gate.posture_of(project), [], tiers)
        deferred = gate.govern(
            tx, caller, project, change, verdict, environment_ids=env_ids, plan=plan
        )
        if deferred is not None:
            return deferred
        return _apply_update(
            tx, caller, project, row, change, evidence | {"policy": verdict.document()}
        )


def _judge_segment(
    tx: Transaction, project: Row[Any], key: str, version: int, fields: dict[str, Any]
) -> tuple[Verdict, dict[str, Any], list[int], list[str]]:
    """Validate the segment in every environment, classify it for every flag using it."""
    doc = _document(key, version, fields)
    env_rows = tx.conn.execute(
        select(environments).where(environments.c.project_id == project.id)
    ).all()
    if not env_rows:
        _check(tx.conn, project.id, [], key, doc)
    found = []
    expanding = []
    for env in env_rows:
        before_doc = snapshots.build_snapshot(tx.conn, env.id)
        after_doc = snapshots.build_snapshot(tx.conn, env.id, override_segment=(key, doc))
        snapshots.check_snapshot(after_doc, f"segments.{key}")
        result = classify_snapshots(decode(before_doc), decode(after_doc), segments=(key,))
        found.append(result)
        if result.is_expansion:
            expanding.append(env)
    summary = most_severe(found)
    tier_rows = tx.conn.execute(
        select(flags.c.risk_tier, flags.c.tags, flags.c.owner).where(
            flags.c.project_id == project.id, flags.c.key.in_(summary.flags or ("",))
        )
    ).all()
    tiers = sorted({r.risk_tier for r in tier_rows}) or ["low"]
    scopes = gate.scopes_for([postures.strictest(tiers)], expanding)
    frozen = []
    if summary.is_expansion:
        frozen = gate.frozen_by(tx.conn, [e.id for e in expanding], tier_rows)
    verdict = postures.decide(
        summary.direction,
        reasons=summary.reasons,
        scopes=scopes,
        posture=gate.posture_of(project),
        frozen_by=frozen,
    )
    return verdict, gate.classification_note(summary), sorted(e.id for e in expanding), tiers


def _apply_update(
    tx: Transaction,
    caller: Caller,
    project: Row[Any],
    row: Row[Any],
    change: Change,
    evidence: dict[str, Any],
) -> dict[str, Any]:
    key = row.key
    before = segment_view(row)
    tx.conn.execute(
        update(segments)
        .where(segments.c.id == row.id)
        .values(**dict(change.after or {}), version=row.version + 1, updated_at=tx.now)
    )
    after = segment_view(lookup.segment(tx.conn, project, key))
    snapshots.bump(tx, _environment_ids(tx.conn, project.id), segment_keys=[key])
    tx.record(
        caller,
        {
            "action": change.action.value,
            "object_type": "segment",
            "object_key": key,
            "project": change.project,
            "before": before,
            "after": after,
            "reason": change.reason,
            "evidence": evidence,
            "refs": dict(change.refs),
        },
    )
    return after


def apply_segment_change(
    tx: Transaction, caller: Caller, change: Change, evidence: dict[str, Any]
) -> dict[str, Any]:
    """Apply an approved segment edit (from a change request) if nothing moved."""
    project = caller.project(tx.conn, change.project, Action.WRITE_PROJECT_OBJECT)
    row = lookup.segment(tx.conn, project, change.object_key)
    if row.version != change.base_version:
        view = segment_view(row)
        raise gate.target_moved(change, row.version, {f: view[f] for f in FIELDS})
    _judge_segment(tx, project, row.key, row.version + 1, dict(change.after or {}))
    return _apply_update(tx, caller, project, row, change, evidence)


def delete_segment(
    svc: Services,
    caller: Caller,
    project_key: str,
    key: str,
    expected_version: int | None,
    reason: str = "",
) -> None:
    """Delete a segment; refused (naming the users) while a flag or segment refers to it."""
    with svc.change() as tx:
        project = caller.project(tx.conn, project_key, Action.WRITE_PROJECT_OBJECT)
        row = lookup.segment(tx.conn, project, key)
        check_version(row.version, expected_version, f"segment {key!r}")
        env_ids = _environment_ids(tx.conn, project.id)
        _check(tx.conn, project.id, env_ids, key, None)
        tx.conn.execute(delete(segments).where(segments.c.id == row.id))
        snapshots.bump(tx, env_ids, segment_keys=[key])
        _record(
            tx,
            caller,
            AuditAction.SEGMENT_DELETED,
            project_key,
            key,
            segment_view(row),
            None,
            reason,
        )
