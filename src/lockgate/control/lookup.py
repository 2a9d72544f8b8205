"""Finding objects by the keys users name them with; absent objects raise NotFound."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, and_, exists, select

from lockgate.contracts.model import BEHAVIOR_KINDS
from lockgate.engine.validate import KEY_PATTERN
from lockgate.errors import Conflict, FieldProblem, InvalidInput, NotFound
from lockgate.store.tables import environments, flags, projects, segments

__all__ = [
    "Page",
    "behavior_of_kind",
    "check_key",
    "check_version",
    "environment",
    "flag",
    "page_args",
    "project",
    "segment",
]


def _query_key(key: str) -> str:
    """``key`` if it could name an object; any other text (NUL bytes…) names nothing."""
    return key if KEY_PATTERN.match(key) else ""


def behavior_of_kind(
    kind: str, key: ColumnElement[str], project: ColumnElement[Any], *, by_project_key: bool = False
) -> ColumnElement[bool]:
    """Rows whose behavior (``key`` in ``project``: its id, or its key with ``by_project_key``)
    is of ``kind`` as it is now; an unknown kind is refused naming ``behavior_kind``."""
    if kind not in BEHAVIOR_KINDS:
        raise InvalidInput(
            "bad behavior kind",
            [FieldProblem("behavior_kind", f"must be one of {', '.join(BEHAVIOR_KINDS)}")],
        )
    query = select(flags.c.id).where(and_(flags.c.key == key, flags.c.behavior_kind == kind))
    if by_project_key:
        query = query.join(projects, flags.c.project_id == projects.c.id).where(
            projects.c.key == project
        )
    else:
        query = query.where(flags.c.project_id == project)
    return exists(query)


def project(conn: Connection, key: str) -> Row[Any]:
    row = conn.execute(select(projects).where(projects.c.key == _query_key(key))).first()
    if row is None:
        raise NotFound(f"project {key!r} not found")
    return row


def environment(conn: Connection, project_row: Row[Any], key: str) -> Row[Any]:
    row = conn.execute(
        select(environments).where(
            environments.c.project_id == project_row.id, environments.c.key == _query_key(key)
        )
    ).first()
    if row is None:
        raise NotFound(f"environment {key!r} not found in project {project_row.key!r}")
    return row


def flag(conn: Connection, project_row: Row[Any], key: str) -> Row[Any]:
    row = conn.execute(
        select(flags).where(flags.c.project_id == project_row.id, flags.c.key == _query_key(key))
    ).first()
    if row is None:
        raise NotFound(f"flag {key!r} not found in project {project_row.key!r}")
    return row


def segment(conn: Connection, project_row: Row[Any], key: str) -> Row[Any]:
    row = conn.execute(
        select(segments).where(
            segments.c.project_id == project_row.id, segments.c.key == _query_key(key)
        )
    ).first()
    if row is None:
        raise NotFound(f"segment {key!r} not found in project {project_row.key!r}")
    return row


@dataclass(frozen=True)
class Page:
    """A page of a list: ``items`` and the cursor of the next page, if any."""

    items: list[dict[str, Any]]
    next_cursor: str | None
    total: int

    def to_dict(self) -> dict[str, Any]:
        return {"items": self.items, "next_cursor": self.next_cursor, "total": self.total}


MAX_LIMIT = 500


def page_args(limit: int, cursor: str | None) -> tuple[int, int]:
    """Validated ``(limit, offset)`` from a request's ``limit`` and opaque ``cursor``."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(
            "bad paging", [FieldProblem("limit", f"must be between 1 and {MAX_LIMIT}")]
        )
    if not cursor:
        return limit, 0
    try:
        offset = int(base64.urlsafe_b64decode(cursor.encode()).decode())
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput(
            "bad paging", [FieldProblem("cursor", "not a cursor from a previous page")]
        ) from None
    if offset < 0:
        raise InvalidInput(
            "bad paging", [FieldProblem("cursor", "not a cursor from a previous page")]
        )
    return limit, offset


def make_page(items: list[dict[str, Any]], limit: int, offset: int, total: int) -> Page:
    end = offset + len(items)
    cursor = base64.urlsafe_b64encode(str(end).encode()).decode() if end < total else None
    return Page(items, cursor, total)


def check_key(key: str, field: str = "key") -> None:
    if not KEY_PATTERN.match(key):
        raise InvalidInput(
            f"invalid {field}",
            [
                FieldProblem(
                    field,
                    "1-128 letters, digits, '_', '.', ':' or '-', starting with a letter or digit",
                )
            ],
        )


def check_version(current: int, expected: int | None, what: str) -> None:
    """Optimistic concurrency: refuse a write based on a version that is not current."""
    if expected is not None and expected != current:
        raise Conflict(
            f"{what} was changed by someone else (version {current}, you sent {expected}); "
            "reload it and retry",
            current_version=current,
        )
