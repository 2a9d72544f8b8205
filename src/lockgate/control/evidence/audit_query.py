"""Reading the audit log: filtered, paged by ``seq``, limited to what the caller may see.

System administrators see every entry. Anybody else sees only entries of projects they
may read; entries without a project (users, tokens, server administration) are for system
administrators only. Pages are keyset-paged on ``seq``, so appends never shift a page.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, Connection, or_, select

from lockgate.control.base import Caller, Services, iso
from lockgate.control.lookup import behavior_of_kind
from lockgate.errors import FieldProblem, InvalidInput, NotFound
from lockgate.policy.access import Action, Decision, decide
from lockgate.store.audit import row_to_entry
from lockgate.store.tables import audit_head, audit_log, projects

__all__ = ["MAX_LIMIT", "AuditQuery", "head_seq", "query_audit"]

MAX_LIMIT = 500
Order = Literal["asc", "desc"]


@dataclass(frozen=True)
class AuditQuery:
    """Filters; ``None`` means "any". ``action`` ending in ``:`` matches as a prefix."""

    project: str | None = None
    environment: str | None = None
    behavior: str | None = None
    behavior_kind: str | None = None
    object_type: str | None = None
    object_key: str | None = None
    actor: str | None = None
    action: str | None = None
    since: str | None = None
    until: str | None = None
    after_seq: int | None = None
    order: Order = "desc"
    limit: int = 50
    cursor: str | None = None


def parse_time(value: str, field: str) -> str:
    """An ISO 8601 instant in the audit log's own format (a time without a zone is UTC)."""
    try:
        moment = datetime.fromisoformat(value.strip())
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return iso(moment)
    except (ValueError, OverflowError):
        raise InvalidInput(
            f"bad {field}",
            [FieldProblem(field, "expected an ISO 8601 time such as 2026-01-31T12:00:00Z")],
        ) from None


def _encode_cursor(order: Order, seq: int) -> str:
    return base64.urlsafe_b64encode(f"{order}:{seq}".encode()).decode()


def _decode_cursor(cursor: str, order: Order) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
        cursor_order, _, seq = text.partition(":")
        if cursor_order != order or not seq.isdigit() or len(seq) > 18:
            raise ValueError(text)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput(
            "bad paging",
            [FieldProblem("cursor", "not a cursor from a previous page of this order")],
        ) from None
    return int(seq)


def _visible_projects(conn: Connection, caller: Caller) -> set[str] | None:
    """Keys of the projects whose entries the caller may read; ``None`` means everything."""
    principal = caller.principal
    if principal is None or principal.is_system_admin:
        return None
    rows = conn.execute(select(projects.c.id, projects.c.key)).all()
    return {r.key for r in rows if decide(principal, Action.READ, r.id) is Decision.ALLOW}


def _require_project(conn: Connection, key: str) -> None:
    """An unknown project is 404 for everyone, system administrators included."""
    if conn.execute(select(projects.c.id).where(projects.c.key == key)).first() is None:
        raise NotFound(f"project {key!r} not found")


def _conditions(query: AuditQuery) -> list[ColumnElement[bool]]:
    c = audit_log.c
    where: list[ColumnElement[bool]] = []
    exact = {
        c.project: query.project,
        c.environment: query.environment,
        c.object_type: query.object_type,
        c.object_key: query.object_key,
    }
    where.extend(column == value for column, value in exact.items() if value is not None)
    if query.behavior is not None:
        where.extend([c.object_type == "flag", c.object_key == query.behavior])
    if query.behavior_kind is not None:
        of_kind = behavior_of_kind(
            query.behavior_kind, c.object_key, c.project, by_project_key=True
        )
        where.extend([c.object_type == "flag", of_kind])
    if query.actor is not None:
        where.append(or_(c.actor_name == query.actor, c.actor_id == query.actor))
    if query.action is not None:
        if query.action.endswith(":"):
            where.append(c.action.startswith(query.action, autoescape=True))
        else:
            where.append(c.action == query.action)
    if query.since is not None:
        where.append(c.ts >= parse_time(query.since, "since"))
    if query.until is not None:
        where.append(c.ts < parse_time(query.until, "until"))
    if query.after_seq is not None:
        where.append(c.seq > query.after_seq)
    return where


def _check_paging(query: AuditQuery) -> int | None:
    if not 1 <= query.limit <= MAX_LIMIT:
        raise InvalidInput(
            "bad paging", [FieldProblem("limit", f"must be between 1 and {MAX_LIMIT}")]
        )
    return None if not query.cursor else _decode_cursor(query.cursor, query.order)


def query_audit(svc: Services, caller: Caller, query: AuditQuery) -> dict[str, Any]:
    """A page of entries, newest first unless ``order="asc"``: ``{items, next_cursor}``."""
    position = _check_paging(query)
    where = _conditions(query)
    c = audit_log.c
    if position is not None:
        where.append(c.seq < position if query.order == "desc" else c.seq > position)
    with svc.view() as conn:
        visible = _visible_projects(conn, caller)
        if visible is None and query.project is not None:
            _require_project(conn, query.project)
        if visible is not None:
            if query.project is not None and query.project not in visible:
                raise NotFound(f"project {query.project!r} not found")
            if not visible:
                return {"items": [], "next_cursor": None}
            where.append(c.project.in_(sorted(visible)))
        ordering = c.seq.desc() if query.order == "desc" else c.seq.asc()
        rows = conn.execute(
            select(audit_log).where(*where).order_by(ordering).limit(query.limit + 1)
        ).all()
    items = [row_to_entry(r._mapping).to_dict() for r in rows[: query.limit]]
    more = len(rows) > query.limit
    next_cursor = _encode_cursor(query.order, items[-1]["seq"]) if more else None
    return {"items": items, "next_cursor": next_cursor}


def head_seq(svc: Services) -> int:
    """The sequence number of the newest audit entry (``0`` before the first): it moves with
    every audited change, whichever process or replica made it."""
    with svc.view() as conn:
        seq = conn.execute(select(audit_head.c.seq)).scalar()
    return int(seq or 0)
