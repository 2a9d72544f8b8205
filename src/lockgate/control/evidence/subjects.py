"""One subject's decision records: export and deletion by context key (docs/privacy.md).

A *subject* is whoever a context's ``key`` names. Its records are found in every
environment of the project, stored under the key as it is or under its hash (when the
environment hashes ``key``). Both operations need the project's admin role and are
audited; the audit entry never holds the key or the records — only ``sha256:`` of the key
(so someone who knows a key can find what was done about it) and the number of records
per environment.

Deletion is a write and takes the governed change path as a typed change
(``subject:deleted``). Removing records only ever reduces what is kept, so the verdict is
always to apply it at once (like every reduction); ``?plan=true`` shows it without doing it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, delete, func, select

from lockgate.control.base import Caller, Services
from lockgate.control.evidence.decisions import EXPORT_PAGE, _line, record_view, subject_keys
from lockgate.control.governance import gate
from lockgate.control.governance.gate import Deferred
from lockgate.errors import FieldProblem, InvalidInput
from lockgate.policy import postures
from lockgate.policy.access import Action
from lockgate.policy.changes import AuditAction, Change, ObjectType
from lockgate.policy.classify import Direction
from lockgate.store.tables import decision_records, environments

__all__ = ["MAX_KEY_CHARS", "delete_subject", "export_subject", "subject_ref"]

MAX_KEY_CHARS = 1024


def subject_ref(key: str) -> str:
    """How the audit log names a subject: ``sha256:`` and the hex digest of its key."""
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def _check_key(key: str) -> None:
    if not key or len(key) > MAX_KEY_CHARS or "\x00" in key:
        raise InvalidInput(
            "bad subject key",
            [FieldProblem("key", f"must be 1 to {MAX_KEY_CHARS} characters, without NUL")],
        )


def _matches(conn: Connection, project_id: int, key: str) -> list[tuple[Any, list[str]]]:
    """Each environment of the project with the stored forms of ``key`` there."""
    envs = conn.execute(
        select(environments)
        .where(environments.c.project_id == project_id)
        .order_by(environments.c.position)
    ).all()
    return [(env, subject_keys(env, key)) for env in envs]


def _counts(conn: Connection, matches: list[tuple[Any, list[str]]]) -> dict[str, int]:
    c = decision_records.c
    counts: dict[str, int] = {}
    for env, keys in matches:
        n = conn.execute(
            select(func.count())
            .select_from(decision_records)
            .where(c.environment_id == env.id, c.context_key.in_(keys))
        ).scalar_one()
        counts[env.key] = int(n)
    return counts


def export_subject(
    services: Services, caller: Caller, project_key: str, key: str, reason: str = ""
) -> Iterator[str]:
    """Every record of subject ``key`` in the project as JSON lines (audited first)."""
    _check_key(key)
    with services.change() as tx:
        project = caller.project(tx.conn, project_key, Action.ADMIN_PROJECT)
        matches = _matches(tx.conn, project.id, key)
        counts = _counts(tx.conn, matches)
        tx.record(
            caller,
            {
                "action": AuditAction.SUBJECT_EXPORTED.value,
                "object_type": ObjectType.SUBJECT.value,
                "object_key": subject_ref(key),
                "project": project_key,
                "environment": None,
                "before": None,
                "after": {"records": counts},
                "reason": reason,
                "evidence": {},
                "refs": {},
            },
        )
    return _export_pages(services, matches)


def _export_pages(services: Services, matches: list[tuple[Any, list[str]]]) -> Iterator[str]:
    c = decision_records.c
    for env, keys in matches:
        after = 0
        while True:
            with services.database.read() as conn:
                rows = conn.execute(
                    select(decision_records)
                    .where(c.environment_id == env.id, c.context_key.in_(keys), c.id > after)
                    .order_by(c.id)
                    .limit(EXPORT_PAGE)
                ).all()
            if not rows:
                break
            yield "".join(_line(record_view(r, env.key)) for r in rows)
            after = rows[-1].id


_REDUCTION = postures.Verdict(
    postures.Outcome.APPLY,
    "reduction",
    0,
    Direction.REDUCTION,
    ("deletes records: only ever reduces what is kept",),
)


def delete_subject(
    services: Services,
    caller: Caller,
    project_key: str,
    key: str,
    reason: str = "",
    *,
    plan: bool = False,
) -> dict[str, Any] | Deferred:
    """Delete every record of subject ``key`` in the project; how many per environment."""
    _check_key(key)
    with services.change() as tx:
        project = caller.project(tx.conn, project_key, Action.ADMIN_PROJECT)
        matches = _matches(tx.conn, project.id, key)
        counts = _counts(tx.conn, matches)
        change = Change(
            action=AuditAction.SUBJECT_DELETED,
            object_type=ObjectType.SUBJECT,
            project=project_key,
            object_key=subject_ref(key),
            before={"records": counts},
            after=None,
            reason=reason,
            actor_id=caller.actor_id,
            actor_name=caller.actor_name,
        )
        deferred = gate.govern(
            tx, caller, project, change, _REDUCTION, environment_ids=[], plan=plan
        )
        if deferred is not None:
            return deferred
        c = decision_records.c
        for env, keys in matches:
            tx.conn.execute(
                delete(decision_records).where(c.environment_id == env.id, c.context_key.in_(keys))
            )
        tx.record(
            caller,
            {
                "action": change.action.value,
                "object_type": change.object_type.value,
                "object_key": change.object_key,
                "project": project_key,
                "environment": None,
                "before": {"records": counts},
                "after": None,
                "reason": reason,
                "evidence": {"policy": _REDUCTION.document()},
                "refs": {},
            },
        )
    return {"subject": subject_ref(key), "deleted": counts, "total": sum(counts.values())}
