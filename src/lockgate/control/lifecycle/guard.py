"""What stops a behavior from being archived: code that still references it, and
evaluations in the last days. Archiving anyway needs ``force`` and a stated reason; the
blockers overridden are recorded in the archive's audit entry."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, func, select

from lockgate.control.base import iso
from lockgate.control.lifecycle import coderefs
from lockgate.control.lifecycle.facts import parse_ts
from lockgate.store.tables import environments, evaluation_counts

__all__ = ["ARCHIVE_QUIET_DAYS", "Blockers", "archive_blockers"]

ARCHIVE_QUIET_DAYS = 7
"""By default, a behavior evaluated in the last this many days is still evaluated
(setting ``archive_quiet_days``)."""


@dataclass(frozen=True)
class Blockers:
    references: list[dict[str, Any]]
    evaluations: int
    last_evaluated: str | None
    quiet_days: int = ARCHIVE_QUIET_DAYS

    @property
    def any(self) -> bool:
        return bool(self.references) or self.evaluations > 0

    def reasons(self) -> list[str]:
        found = []
        if self.references:
            places = {(r["repository"], r["branch"]) for r in self.references}
            found.append(
                f"{len(self.references)} code references in {len(places)} repository branches"
            )
        if self.evaluations:
            found.append(
                f"{self.evaluations} evaluations in the last {self.quiet_days} days "
                f"(last {self.last_evaluated})"
            )
        return found

    def document(self) -> dict[str, Any]:
        return {
            "code_references": len(self.references),
            "references": self.references[:20],
            "evaluations": self.evaluations,
            "last_evaluated": self.last_evaluated,
            "quiet_days": self.quiet_days,
        }


def archive_blockers(
    conn: Connection, project_id: int, key: str, now: str, quiet_days: int = ARCHIVE_QUIET_DAYS
) -> Blockers:
    refs = coderefs.references_by_key(conn, project_id, [key]).get(key, [])
    moment = parse_ts(now)
    assert moment is not None
    since = iso(moment - timedelta(days=quiet_days))
    c = evaluation_counts.c
    total, last = conn.execute(
        select(func.coalesce(func.sum(c.count), 0), func.max(c.window_end))
        .join(environments, environments.c.id == c.environment_id)
        .where(
            environments.c.project_id == project_id,
            c.flag == key,
            c.count > 0,
            c.window_end >= since,
        )
    ).one()
    return Blockers(refs, int(total or 0), last, quiet_days)
