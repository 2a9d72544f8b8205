"""The decision log's full records: ingestion (redacted again), queries, export, retention.

Records arrive from SDKs already redacted; the server applies the environment's rules once
more before storing anything (:func:`lockgate.privacy.redact`), so a record from an old or
foreign client that still carries a private attribute is stored without it. Queries are
keyset-paged on the record id, newest first; the JSONL export reads in pages of
:data:`EXPORT_PAGE` rows, so its memory does not grow with the log. Retention deletes
records older than their kind's retention (setting ``decision_retention``), in batches,
from the background job.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, delete, insert, select

from lockgate import privacy
from lockgate.control import lookup
from lockgate.control.base import Caller, Services, iso
from lockgate.control.evidence.audit_query import parse_time
from lockgate.decisionlog import DecisionKind
from lockgate.errors import FieldProblem, InvalidInput
from lockgate.policy.access import Action
from lockgate.store.tables import decision_records, environments

__all__ = [
    "EXPORT_PAGE",
    "MAX_LIMIT",
    "DecisionQuery",
    "IncomingRecord",
    "apply_retention",
    "environment_policy",
    "export_records",
    "ingest",
    "query_records",
    "record_view",
]

MAX_LIMIT = 500
EXPORT_PAGE = 500
RETENTION_BATCH = 5_000


@dataclass(frozen=True, slots=True)
class IncomingRecord:
    """One record as an SDK sent it (validated for shape by the transport)."""

    kind: str
    flag: str
    variation: str | None
    reason: str
    rule: str | None
    context: Mapping[str, Any]
    redacted: Sequence[str]
    detail: Mapping[str, Any] | None
    at: str


def environment_policy(env: Any) -> privacy.RedactionPolicy:
    """The environment's redaction policy (its stored settings and salt)."""
    policy, _ = privacy.parse_settings(env.privacy or {}, env.privacy_salt or "")
    return policy or privacy.RedactionPolicy(salt=env.privacy_salt or "")


def privacy_for_sdk(services: Services, environment_id: int) -> dict[str, Any]:
    """What ``GET /sdk/v1/privacy`` answers: the settings, their version and the salt."""
    with services.database.read() as conn:
        env = conn.execute(select(environments).where(environments.c.id == environment_id)).one()
    policy = environment_policy(env)
    return {"version": env.version, **policy.document(), "salt": policy.salt}


def ingest(
    services: Services, environment_id: int, records: Sequence[IncomingRecord], sdk: str
) -> int:
    """Store ``records`` redacted by the environment's rules; the settings version used."""
    now = services.now()
    with services.database.write() as conn:
        env = conn.execute(select(environments).where(environments.c.id == environment_id)).one()
        policy = environment_policy(env)
        if records:
            conn.execute(
                insert(decision_records),
                [_row(r, policy, environment_id, sdk, now) for r in records],
            )
    return int(env.version)


def _row(
    record: IncomingRecord, policy: privacy.RedactionPolicy, environment_id: int, sdk: str, now: str
) -> dict[str, Any]:
    context, dropped = privacy.redact(record.context, policy)
    # Names the SDK dropped, plus any the server dropped now; names are never secret.
    names = sorted(set(record.redacted) | set(dropped))
    key = context.get("key")
    return {
        "environment_id": environment_id,
        "kind": record.kind,
        "flag": record.flag,
        "variation": record.variation,
        "reason": record.reason,
        "rule": record.rule,
        "context_key": None if key is None else _key_text(key),
        "context": context,
        "redacted": names,
        "detail": None if record.detail is None else dict(record.detail),
        "decided_at": record.at,
        "received_at": now,
        "sdk": sdk,
    }


def _key_text(key: Any) -> str:
    return key if isinstance(key, str) else json.dumps(key)


def record_view(row: Row[Any], environment_key: str | None = None) -> dict[str, Any]:
    view = {
        "id": row.id,
        "kind": row.kind,
        "behavior": row.flag,
        "variation": row.variation,
        "reason": row.reason,
        "rule": row.rule,
        "context_key": row.context_key,
        "context": row.context,
        "redacted": row.redacted,
        "detail": row.detail,
        "decided_at": row.decided_at,
        "received_at": row.received_at,
        "sdk": row.sdk,
    }
    if environment_key is not None:
        view["environment"] = environment_key
    return view


# -- queries ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DecisionQuery:
    """Filters; ``None`` means "any". ``since`` is inclusive, ``until`` exclusive."""

    behavior: str | None = None
    kind: str | None = None
    reason: str | None = None
    variation: str | None = None
    context_key: str | None = None
    since: str | None = None
    until: str | None = None
    limit: int = 50
    cursor: str | None = None


def _conditions(query: DecisionQuery, env: Any) -> list[ColumnElement[bool]]:
    c = decision_records.c
    where: list[ColumnElement[bool]] = [c.environment_id == env.id]
    if query.kind is not None:
        if query.kind not in {k.value for k in DecisionKind}:
            known = ", ".join(k.value for k in DecisionKind)
            raise InvalidInput("bad kind", [FieldProblem("kind", f"expected one of {known}")])
        where.append(c.kind == query.kind)
    exact = {c.flag: query.behavior, c.reason: query.reason, c.variation: query.variation}
    where.extend(column == value for column, value in exact.items() if value is not None)
    if query.context_key is not None:
        where.append(c.context_key.in_(subject_keys(env, query.context_key)))
    if query.since is not None:
        where.append(c.decided_at >= parse_time(query.since, "since"))
    if query.until is not None:
        where.append(c.decided_at < parse_time(query.until, "until"))
    return where


def subject_keys(env: Any, key: str) -> list[str]:
    """How a subject's ``key`` may be stored in one environment: as is, or hashed."""
    return [key, environment_policy(env).hash(key)]


def _encode_cursor(record_id: int) -> str:
    return base64.urlsafe_b64encode(f"d:{record_id}".encode()).decode()


def _decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
        prefix, _, number = text.partition(":")
        if prefix != "d" or not number.isdigit() or len(number) > 18:
            raise ValueError(text)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput(
            "bad paging", [FieldProblem("cursor", "not a cursor from a previous page")]
        ) from None
    return int(number)


def _environment(conn: Connection, caller: Caller, project_key: str, env_key: str) -> Any:
    project = lookup.project(conn, project_key)
    caller.may_read(project.id, f"project {project_key!r}")
    env = lookup.environment(conn, project, env_key)
    caller.authorize(Action.READ_ENVIRONMENT, project.id, env.id, what=f"environment {env_key!r}")
    return env


def query_records(
    services: Services, caller: Caller, project_key: str, env_key: str, query: DecisionQuery
) -> dict[str, Any]:
    """One page of records, newest first, and the cursor of the next page (or ``None``)."""
    limit = max(1, min(query.limit, MAX_LIMIT))
    with services.database.read() as conn:
        env = _environment(conn, caller, project_key, env_key)
        where = _conditions(query, env)
        if query.cursor is not None:
            where.append(decision_records.c.id < _decode_cursor(query.cursor))
        rows = conn.execute(
            select(decision_records)
            .where(*where)
            .order_by(decision_records.c.id.desc())
            .limit(limit + 1)
        ).all()
    items = [record_view(r) for r in rows[:limit]]
    more = len(rows) > limit
    return {"items": items, "next_cursor": _encode_cursor(rows[limit - 1].id) if more else None}


def export_records(
    services: Services, caller: Caller, project_key: str, env_key: str, query: DecisionQuery
) -> Iterator[str]:
    """The matching records as JSON lines, oldest first, read :data:`EXPORT_PAGE` at a time.

    Access and filters are checked before the first line is produced (errors surface as
    problems, not as a broken stream).
    """
    with services.database.read() as conn:
        env = _environment(conn, caller, project_key, env_key)
        where = _conditions(query, env)
    return _pages(services, where, env.key)


def _pages(services: Services, where: list[ColumnElement[bool]], env_key: str) -> Iterator[str]:
    after = 0
    while True:
        with services.database.read() as conn:
            rows = conn.execute(
                select(decision_records)
                .where(*where, decision_records.c.id > after)
                .order_by(decision_records.c.id)
                .limit(EXPORT_PAGE)
            ).all()
        if not rows:
            return
        yield "".join(_line(record_view(r, env_key)) for r in rows)
        after = rows[-1].id


def _line(view: dict[str, Any]) -> str:
    return json.dumps(view, ensure_ascii=False, separators=(",", ":"), sort_keys=True) + "\n"


# -- retention --------------------------------------------------------------------------


def apply_retention(services: Services, retention: Mapping[str, int]) -> int:
    """Delete records older than their kind's retention in days (``0``: kept); how many."""
    now = services.clock()
    deleted = 0
    for kind, days in sorted(retention.items()):
        if days <= 0:
            continue
        cutoff = iso(now - timedelta(days=days))
        deleted += _delete_older(services, kind, cutoff)
    return deleted


def _delete_older(services: Services, kind: str, cutoff: str) -> int:
    c = decision_records.c
    deleted = 0
    while True:  # in batches: a long backlog never holds the write lock for long
        with services.database.write() as conn:
            ids = (
                conn.execute(
                    select(c.id)
                    .where(c.kind == kind, c.decided_at < cutoff)
                    .order_by(c.id)
                    .limit(RETENTION_BATCH)
                )
                .scalars()
                .all()
            )
            if ids:
                conn.execute(delete(decision_records).where(c.id.in_(ids)))
        deleted += len(ids)
        if len(ids) < RETENTION_BATCH:
            return deleted
