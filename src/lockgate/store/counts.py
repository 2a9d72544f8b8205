"""Evaluation counts per hour (``evaluation_hours``): added into in the transaction that
stores the counts SDKs report, so that charts and totals read at most one row per hour,
variation and reason, however many SDK instances report."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite

from lockgate.store.tables import evaluation_hours

__all__ = ["DEFAULT_VARIATION", "add_hours", "hour_of"]

DEFAULT_VARIATION = ""
"""The stored ``variation`` of counts that served the caller's default (no variation)."""
_KEY = ["environment_id", "flag", "hour", "variation", "reason"]
_UPSERTS: dict[str, Any] = {}


def hour_of(timestamp: str) -> str:
    """``2026-12-06T03:04:05.000000Z`` → ``2026-12-06T03`` (canonical timestamps only)."""
    return timestamp[:13]


def _upsert(dialect_name: str) -> Any:
    statement = _UPSERTS.get(dialect_name)
    if statement is None:
        dialect = sqlite if dialect_name == "sqlite" else postgresql
        insert = dialect.insert(evaluation_hours)
        statement = _UPSERTS[dialect_name] = insert.on_conflict_do_update(
            index_elements=_KEY,
            set_={"count": evaluation_hours.c.count + insert.excluded.count},
        )
    return statement


def add_hours(
    conn: Connection, environment_id: int, rows: Iterable[tuple[str, str | None, str, str, int]]
) -> int:
    """Add counts — (flag, variation, reason, window start, count) — into their hours, in one
    statement (summed here first: one batch never names the same row twice)."""
    totals: dict[tuple[str, str, str, str], int] = {}
    for flag, variation, reason, start, count in rows:
        key = (flag, hour_of(start), variation or DEFAULT_VARIATION, reason)
        totals[key] = totals.get(key, 0) + count
    if not totals:
        return 0
    values = [
        {"environment_id": environment_id, "flag": flag, "hour": hour, "variation": variation,
         "reason": reason, "count": count}
        for (flag, hour, variation, reason), count in sorted(totals.items())
    ]  # fmt: skip
    conn.execute(_upsert(conn.dialect.name), values)
    return len(values)
