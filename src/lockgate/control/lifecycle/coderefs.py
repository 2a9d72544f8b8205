"""Code references: the latest scan of each repository and branch, uploaded by
``lockgate code-refs scan --upload`` and read back per behavior.

An upload replaces the previous scan of the same repository and branch in one audited
transaction (``code_refs:uploaded``). It changes nothing that is served, so it applies at
once for anyone who may edit the project's objects.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update

from lockgate.control.base import Caller, Services, Transaction
from lockgate.control.governance import gate
from lockgate.errors import FieldProblem, InvalidInput
from lockgate.policy import postures
from lockgate.policy.access import Action
from lockgate.policy.changes import AuditAction, Change, ObjectType
from lockgate.policy.classify import Direction
from lockgate.store.tables import code_ref_uploads, code_refs, flags

__all__ = ["MAX_REFERENCES", "list_references", "references_by_key", "upload"]

MAX_REFERENCES = 50_000
"""At most this many references in one upload (a bigger scan is refused with 413-like 422)."""
_SNIPPET = 500


def _problem(field: str, message: str) -> InvalidInput:
    return InvalidInput(
        f"invalid code references: {field} {message}", [FieldProblem(field, message)]
    )


def _clean(references: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    if len(references) > MAX_REFERENCES:
        raise _problem("references", f"at most {MAX_REFERENCES} in one upload")
    rows = []
    for i, ref in enumerate(references):
        key, path, line = ref.get("key"), ref.get("path"), ref.get("line")
        if not isinstance(key, str) or not 0 < len(key) <= 128:
            raise _problem(f"references[{i}].key", "must be a behavior key")
        if not isinstance(path, str) or not 0 < len(path) <= 1000:
            raise _problem(f"references[{i}].path", "must be a path of at most 1000 characters")
        if isinstance(line, bool) or not isinstance(line, int) or line < 1:
            raise _problem(f"references[{i}].line", "must be a line number, 1 or more")
        snippet = str(ref.get("text") or "")[:_SNIPPET]
        rows.append({"flag_key": key, "path": path, "line": line, "snippet": snippet})
    return rows


def upload(
    svc: Services,
    caller: Caller,
    project_key: str,
    *,
    repository: str,
    branch: str,
    commit: str | None,
    files_scanned: int,
    references: Sequence[Mapping[str, Any]],
    append: bool = False,
) -> dict[str, Any]:
    """Replace the scan of ``repository``@``branch`` with ``references`` (audited);
    ``append``: add them to it (a later part of one scan)."""
    rows = _clean(references)
    with svc.change() as tx:
        project = caller.project(tx.conn, project_key, Action.WRITE_PROJECT_OBJECT)
        known = {
            r.key: r.archived
            for r in tx.conn.execute(
                select(flags.c.key, flags.c.archived).where(flags.c.project_id == project.id)
            )
        }
        previous = tx.conn.execute(
            select(code_ref_uploads).where(
                code_ref_uploads.c.project_id == project.id,
                code_ref_uploads.c.repository == repository,
                code_ref_uploads.c.branch == branch,
            )
        ).first()
        keys = sorted({r["flag_key"] for r in rows})
        after = {
            "part": "append" if append and previous is not None else "replace",
            "commit": commit,
            "files_scanned": files_scanned,
            "references": len(rows),
            "behaviors": len(keys),
            "archived": [k for k in keys if known.get(k)],
            "unknown": [k for k in keys if k not in known],
        }
        change = Change(
            action=AuditAction.CODE_REFS_UPLOADED,
            object_type=ObjectType.REPOSITORY,
            project=project_key,
            object_key=f"{repository}@{branch}",
            before=None if previous is None else {"commit": previous.commit},
            after=after,
            actor_id=caller.actor_id,
            actor_name=caller.actor_name,
        )
        verdict = postures.decide(
            Direction.NONE, scopes=[], posture=gate.posture_of(project), system=caller.automatic
        )
        gate.govern(tx, caller, project, change, verdict, environment_ids=[])
        if append and previous is not None:
            upload_id = previous.id
            tx.conn.execute(
                update(code_ref_uploads)
                .where(code_ref_uploads.c.id == upload_id)
                .values(files_scanned=previous.files_scanned + files_scanned, uploaded_at=tx.now)
            )
        else:
            upload_id = _replace(tx, project.id, previous, repository, branch, commit,
                                 files_scanned, caller.actor_name)  # fmt: skip
        if rows:
            tx.conn.execute(insert(code_refs), [{**r, "upload_id": upload_id} for r in rows])
        tx.record(
            caller,
            {
                "action": change.action.value,
                "object_type": change.object_type.value,
                "object_key": change.object_key,
                "project": project_key,
                "before": change.before,
                "after": after,
                "reason": "",
                "evidence": {"policy": verdict.document()},
                "refs": {},
            },
        )
    return {"repository": repository, "branch": branch, "uploaded_at": tx.now, **after}


def _replace(
    tx: Transaction,
    project_id: int,
    previous: Row[Any] | None,
    repository: str,
    branch: str,
    commit: str | None,
    files_scanned: int,
    actor: str,
) -> int:
    if previous is not None:
        tx.conn.execute(delete(code_refs).where(code_refs.c.upload_id == previous.id))
        tx.conn.execute(delete(code_ref_uploads).where(code_ref_uploads.c.id == previous.id))
    upload_id: int = tx.conn.execute(
        insert(code_ref_uploads)
        .values(
            project_id=project_id, repository=repository, branch=branch, commit=commit,
            files_scanned=files_scanned, uploaded_at=tx.now, uploaded_by=actor,
        )
        .returning(code_ref_uploads.c.id)
    ).scalar_one()  # fmt: skip
    return upload_id


def references_by_key(
    conn: Connection, project_id: int, keys: Iterable[str] | None = None
) -> dict[str, list[dict[str, Any]]]:
    """The latest references of each behavior key, from every repository and branch."""
    query = (
        select(
            code_refs.c.flag_key, code_refs.c.path, code_refs.c.line, code_refs.c.snippet,
            code_ref_uploads.c.repository, code_ref_uploads.c.branch, code_ref_uploads.c.commit,
            code_ref_uploads.c.uploaded_at,
        )
        .join(code_ref_uploads, code_ref_uploads.c.id == code_refs.c.upload_id)
        .where(code_ref_uploads.c.project_id == project_id)
        .order_by(code_ref_uploads.c.repository, code_ref_uploads.c.branch, code_refs.c.path,
                  code_refs.c.line)
    )  # fmt: skip
    if keys is not None:
        query = query.where(code_refs.c.flag_key.in_(list(keys)))
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in conn.execute(query):
        found[r.flag_key].append(
            {
                "repository": r.repository,
                "branch": r.branch,
                "commit": r.commit,
                "path": r.path,
                "line": r.line,
                "text": r.snippet,
                "uploaded_at": r.uploaded_at,
            }
        )
    return dict(found)


def list_references(
    svc: Services, caller: Caller, project_key: str, key: str | None = None
) -> dict[str, Any]:
    """The uploaded scans of a project and the references they hold (of ``key`` only)."""
    with svc.view() as conn:
        project = caller.project(conn, project_key, Action.READ)
        uploads = [
            {
                "repository": u.repository,
                "branch": u.branch,
                "commit": u.commit,
                "files_scanned": u.files_scanned,
                "uploaded_at": u.uploaded_at,
                "uploaded_by": u.uploaded_by,
            }
            for u in conn.execute(
                select(code_ref_uploads)
                .where(code_ref_uploads.c.project_id == project.id)
                .order_by(code_ref_uploads.c.repository, code_ref_uploads.c.branch)
            )
        ]
        refs = references_by_key(conn, project.id, None if key is None else [key])
    return {"uploads": uploads, "references": refs}
