"""Reads the facts a behavior's lifecycle is derived from, for one behavior or a project.

Production environments are the protected ones. Evaluation counts come from the decision
log (``evaluation_counts``), breaches from the guardrails' stored state, the configuration
history from ``flag_config_versions``, and the marks from ``flag_lifecycle``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, func, select

from lockgate.control.base import iso
from lockgate.lifecycle import (
    DEFAULT_STALE_DAYS,
    BehaviorFacts,
    CleanupRule,
    ConfigVersion,
    EnvironmentFacts,
    RuleError,
    rule_from_contract,
)
from lockgate.store.tables import (
    environments,
    evaluation_counts,
    flag_config_versions,
    flag_configs,
    flag_lifecycle,
    flags,
    guardrails,
)

__all__ = ["Gathered", "gather", "parse_ts"]


def parse_ts(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True)
class Gathered:
    """One behavior's facts, its row, and a problem with its cleanup rule (if any)."""

    row: Row[Any]
    facts: BehaviorFacts
    rule_problem: str | None
    cleanup_evidence: dict[str, Any] | None


def _rule(row: Row[Any]) -> tuple[CleanupRule | None, str | None]:
    stored = (row.contract or {}).get("cleanup_rule")
    try:
        return rule_from_contract(stored), None
    except RuleError as problem:
        return None, str(problem)


def _histories(conn: Connection, flag_ids: list[int]) -> dict[tuple[int, int], list[ConfigVersion]]:
    found: dict[tuple[int, int], list[ConfigVersion]] = defaultdict(list)
    rows = conn.execute(
        select(
            flag_config_versions.c.flag_id,
            flag_config_versions.c.environment_id,
            flag_config_versions.c.created_at,
            flag_config_versions.c.config,
        )
        .where(flag_config_versions.c.flag_id.in_(flag_ids))
        .order_by(flag_config_versions.c.version)
    )
    for r in rows:
        at = parse_ts(r.created_at)
        assert at is not None
        found[(r.flag_id, r.environment_id)].append(ConfigVersion(at, r.config))
    current = conn.execute(select(flag_configs).where(flag_configs.c.flag_id.in_(flag_ids))).all()
    for c in current:
        history = found[(c.flag_id, c.environment_id)]
        if not history or history[-1].config != c.config:
            at = parse_ts(c.updated_at)
            assert at is not None
            history.append(ConfigVersion(at, c.config))
    return found


def _evaluations(
    conn: Connection, env_ids: list[int], keys: list[str], since: str
) -> tuple[dict[tuple[int, str], datetime], dict[tuple[int, str], dict[str, int]]]:
    c = evaluation_counts.c
    last: dict[tuple[int, str], datetime] = {}
    for r in conn.execute(
        select(c.environment_id, c.flag, func.max(c.window_end).label("last"))
        .where(c.environment_id.in_(env_ids), c.flag.in_(keys), c.count > 0)
        .group_by(c.environment_id, c.flag)
    ):
        moment = parse_ts(r.last)
        if moment is not None:
            last[(r.environment_id, r.flag)] = moment
    recent: dict[tuple[int, str], dict[str, int]] = defaultdict(dict)
    for v in conn.execute(
        select(c.environment_id, c.flag, c.variation, func.sum(c.count).label("n"))
        .where(c.environment_id.in_(env_ids), c.flag.in_(keys), c.window_end >= since)
        .group_by(c.environment_id, c.flag, c.variation)
    ):
        recent[(v.environment_id, v.flag)][str(v.variation)] = int(v.n)
    return last, recent


def _breaches(conn: Connection, flag_ids: list[int]) -> dict[tuple[int, int], tuple[Any, bool]]:
    found: dict[tuple[int, int], tuple[Any, bool]] = {}
    for g in conn.execute(
        select(guardrails.c.flag_id, guardrails.c.environment_id, guardrails.c.state,
               guardrails.c.breached_at).where(guardrails.c.flag_id.in_(flag_ids))
    ):  # fmt: skip
        key = (g.flag_id, g.environment_id)
        last, now = found.get(key, (None, False))
        at = parse_ts(g.breached_at)
        if at is not None and (last is None or at > last):
            last = at
        found[key] = (last, now or g.state == "breached")
    return found


def gather(
    conn: Connection,
    project_id: int,
    flag_rows: Iterable[Row[Any]],
    now: datetime,
    *,
    stale_days: int = DEFAULT_STALE_DAYS,
) -> list[Gathered]:
    """The facts of ``flag_rows`` (of one project), read in a few queries."""
    rows = list(flag_rows)
    if not rows:
        return []
    ids = [r.id for r in rows]
    envs = conn.execute(
        select(environments)
        .where(environments.c.project_id == project_id)
        .order_by(environments.c.position, environments.c.id)
    ).all()
    histories = _histories(conn, ids)
    since = iso(now - timedelta(days=stale_days))
    last, recent = _evaluations(conn, [e.id for e in envs], [r.key for r in rows], since)
    breaches = _breaches(conn, ids)
    marks = {
        m.flag_id: m
        for m in conn.execute(select(flag_lifecycle).where(flag_lifecycle.c.flag_id.in_(ids)))
    }
    out = []
    for row in rows:
        rule, problem = _rule(row)
        mark = marks.get(row.id)
        per_env = []
        for e in envs:
            breach, breached = breaches.get((row.id, e.id), (None, False))
            per_env.append(
                EnvironmentFacts(
                    key=e.key,
                    production=bool(e.protected),
                    history=tuple(histories.get((row.id, e.id), ())),
                    last_evaluated=last.get((e.id, row.key)),
                    recent_variations=recent.get((e.id, row.key), {}),
                    last_breach=breach,
                    breached_now=breached,
                )
            )
        created = parse_ts(row.created_at)
        assert created is not None
        facts = BehaviorFacts(
            key=row.key,
            created_at=created,
            lifecycle=row.lifecycle,
            owner=row.owner,
            behavior_kind=row.behavior_kind,
            archived=bool(row.archived),
            archived_at=parse_ts(mark.archived_at) if mark else None,
            cleanup_due_at=parse_ts(mark.cleanup_due_at) if mark else None,
            permanent_reason=mark.permanent_reason if mark else None,
            rule=rule,
            environments=tuple(per_env),
        )
        out.append(Gathered(row, facts, problem, mark.cleanup_evidence if mark else None))
    return out


def project_flags(
    conn: Connection, project_id: int, *, archived: bool | None = None
) -> list[Row[Any]]:
    query = select(flags).where(flags.c.project_id == project_id).order_by(flags.c.key)
    if archived is not None:
        query = query.where(flags.c.archived.is_(archived))
    return list(conn.execute(query))
