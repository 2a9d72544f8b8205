"""Environment snapshots: built from the store, validated with the engine, versioned.

Every change to anything an environment serves bumps that environment's
``snapshot_version`` and records which flags and segments changed, in the same
transaction; the delivery layer streams from that record.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update

from lockgate.control.base import ChangeEvent, Transaction
from lockgate.control.cache import SnapshotCache, StoredSnapshot
from lockgate.engine import SNAPSHOT_FORMAT, Snapshot, decode, validate
from lockgate.engine.codec import apply_changes
from lockgate.engine.problems import Problem
from lockgate.engine.validate import Changes, contained_after, known_after, self_contained
from lockgate.errors import FieldProblem, InvalidInput
from lockgate.store.db import CHANGE_CHANNEL
from lockgate.store.tables import (
    environment_changes,
    environments,
    flag_configs,
    flags,
    guardrails,
    projects,
    segments,
    tools,
)

__all__ = [
    "CHANGE_CHANNEL",
    "SnapshotCache",
    "CheckedUpdate",
    "StoredSnapshot",
    "bump",
    "build_snapshot",
    "check_flag_update",
    "check_snapshot",
    "definition_document",
    "flag_document",
    "segment_document",
    "segment_fields_document",
]


_FLAG_FIELDS = (
    "kind", "variations", "client_visible", "name", "risk_tier", "lifecycle", "tags", "owner",
)  # fmt: skip
_SEGMENT_FIELDS = ("version", "included", "excluded", "rules", "attribute", "name")


def flag_document(flag: Any, config: dict[str, Any], version: int) -> dict[str, Any]:
    """A flag in snapshot form from its definition row and one environment's config."""
    return definition_document(flag.key, flag._mapping, config, version)


def definition_document(
    key: str, definition: Mapping[str, Any], config: dict[str, Any], version: int
) -> dict[str, Any]:
    """A flag in snapshot form from its definition's fields and one environment's config."""
    doc: dict[str, Any] = {"key": key, "version": version}
    doc.update((name, definition[name]) for name in _FLAG_FIELDS)
    doc.update(config)
    return doc


def segment_document(segment: Any) -> dict[str, Any]:
    """A segment in snapshot form from its row."""
    return segment_fields_document(segment.key, segment._mapping)


def segment_fields_document(key: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """A segment in snapshot form from its fields (``version`` included)."""
    return {"key": key, **{name: fields[name] for name in _SEGMENT_FIELDS}}


def build_snapshot(
    conn: Connection,
    environment_id: int,
    *,
    override_flag: tuple[str, dict[str, Any]] | None = None,
    override_segment: tuple[str, dict[str, Any] | None] | None = None,
) -> dict[str, Any]:
    """The environment's snapshot as stored now, optionally with one flag or segment replaced."""
    env = conn.execute(
        select(
            environments,
            projects.c.key.label("project_key"),
            projects.c.tool_policy.label("tool_policy"),
        )
        .join(projects, projects.c.id == environments.c.project_id)
        .where(environments.c.id == environment_id)
    ).one()
    rows = conn.execute(
        select(flags, flag_configs.c.config, flag_configs.c.version.label("config_version"))
        .join(flag_configs, flag_configs.c.flag_id == flags.c.id)
        .where(flag_configs.c.environment_id == environment_id, flags.c.archived.is_(False))
    ).all()
    flag_docs = {r.key: flag_document(r, r.config, r.config_version) for r in rows}
    seg_rows = conn.execute(select(segments).where(segments.c.project_id == env.project_id)).all()
    seg_docs: dict[str, Any] = {s.key: segment_document(s) for s in seg_rows}
    if override_flag is not None:
        flag_docs[override_flag[0]] = override_flag[1]
    if override_segment is not None:
        key, doc = override_segment
        if doc is None:
            seg_docs.pop(key, None)
        else:
            seg_docs[key] = doc
    document = {
        "format": SNAPSHOT_FORMAT,
        "project": env.project_key,
        "environment": env.key,
        "version": env.snapshot_version,
        "flags": flag_docs,
        "segments": seg_docs,
    }
    metrics = metric_bindings(conn, environment_id)
    if metrics:  # left out when empty: SDKs from before metrics reject the field
        document["metrics"] = metrics
    tool_rows = conn.execute(
        select(tools).where(tools.c.project_id == env.project_id).order_by(tools.c.key)
    ).all()
    if tool_rows:  # left out when empty, like metrics (ADR 0011)
        document["tools"] = {row.key: tool_document(row) for row in tool_rows}
    if env.tool_policy:
        document["tool_policy"] = env.tool_policy
    return document


def tool_document(row: Any) -> dict[str, Any]:
    """A registered tool in snapshot form (docs/snapshot-format.md#tools)."""
    doc: dict[str, Any] = {"risk": row.risk, "version": row.version}
    if row.description:
        doc["description"] = row.description
    if row.deny:
        doc["deny"] = [{"id": d["id"], "clauses": d.get("clauses", [])} for d in row.deny]
    if row.budget:
        doc["budget"] = row.budget
    return doc


def metric_bindings(conn: Connection, environment_id: int) -> dict[str, Any]:
    """What SDKs attribute tracked metrics to, from the environment's guardrails: each
    metric's behaviors, and the cohort attribute of a per-cohort guardrail on it."""
    rows = conn.execute(
        select(guardrails.c.definition, flags.c.key)
        .join(flags, flags.c.id == guardrails.c.flag_id)
        .where(guardrails.c.environment_id == environment_id, flags.c.archived.is_(False))
        .order_by(guardrails.c.id)
    ).all()
    found: dict[str, dict[str, Any]] = {}
    for definition, flag_key in rows:
        if definition.get("data_source") == "prometheus":
            continue  # read from Prometheus, not tracked by SDKs
        binding = found.setdefault(definition["metric"], {"behaviors": [], "cohort": None})
        if flag_key not in binding["behaviors"]:
            binding["behaviors"].append(flag_key)
        if definition.get("per") and binding["cohort"] is None:
            binding["cohort"] = definition["per"]
    return {
        metric: {"behaviors": sorted(b["behaviors"]), "cohort": b["cohort"]}
        for metric, b in sorted(found.items())
    }


def check_snapshot(document: dict[str, Any], focus: str, field_prefix: str = "") -> None:
    """Raise :class:`InvalidInput` if ``document`` has problems under ``focus``.

    ``focus`` is the snapshot path of the object being written (``flags.checkout``); its
    problems are reported as request fields relative to it. Problems elsewhere that the
    change causes (a prerequisite now missing…) are reported with their snapshot path.
    """
    _refuse(validate(decode(document)), focus, field_prefix)


@dataclass(frozen=True)
class CheckedUpdate:
    """A flag write checked against the environment: the snapshot before and after it."""

    environment_id: int
    version: int
    before: Snapshot
    after: Snapshot
    stored: StoredSnapshot | None

    def remember(self, tx: Transaction) -> None:
        """Cache the result as the environment's next version once ``tx`` commits.

        Call it only when the change is applied in ``tx`` (not when it is only proposed).
        """
        stored = self.stored
        if stored is None:
            return
        cache: SnapshotCache = tx.services.snapshot_cache
        environment_id, version = self.environment_id, self.version + 1
        tx.after_commit(lambda: cache.put(environment_id, version, stored))


def check_flag_update(
    tx: Transaction, environment_id: int, version: int, key: str, doc: dict[str, Any]
) -> CheckedUpdate:
    """:func:`check_snapshot` of the environment (at ``version``, its stored one) with flag
    ``key`` replaced by ``doc``, at the cost of that flag rather than of the environment.

    The stored snapshot comes from the services' :class:`SnapshotCache` (built and checked
    on a miss); only what the change can affect is validated again. The result carries
    both snapshots (for the change's classification) and, through
    :meth:`CheckedUpdate.remember`, caches the new one once the change commits.
    """
    cache: SnapshotCache = tx.services.snapshot_cache
    base = cache.get(environment_id, version)
    if base is None:
        document = build_snapshot(tx.conn, environment_id)
        snapshot = decode(document)
        if document["version"] != version or validate(snapshot):  # never, in practice
            overridden = build_snapshot(tx.conn, environment_id, override_flag=(key, doc))
            check_snapshot(overridden, f"flags.{key}")
            return CheckedUpdate(environment_id, version, snapshot, decode(overridden), None)
        base = StoredSnapshot(document, snapshot, self_contained(snapshot))
        cache.put(environment_id, version, base)
    changes = Changes(flags=frozenset((key,)))
    changed = apply_changes(base.snapshot, version + 1, {key: doc}, {})
    _refuse(
        validate(changed, known_after(base.snapshot, base.contained, changed, changes)),
        f"flags.{key}",
    )
    document = {
        **base.document,
        "version": version + 1,
        "flags": {**base.document["flags"], key: doc},
    }
    after = StoredSnapshot(document, changed, contained_after(base.contained, changed, changes))
    return CheckedUpdate(environment_id, version, base.snapshot, changed, after)


def _refuse(problems: list[Problem], focus: str, field_prefix: str = "") -> None:
    if not problems:
        return
    fields = []
    for problem in problems:
        path = problem.path
        if path == focus:
            path = field_prefix.rstrip(".") or "body"
        elif path.startswith(focus + "."):
            path = field_prefix + path[len(focus) + 1 :]
        fields.append(FieldProblem(path, problem.message))
    raise InvalidInput("the change would make the configuration invalid", fields)


_SET_VERSION = (
    update(environments)
    .where(environments.c.id == bindparam("env_id"))
    .values(snapshot_version=bindparam("new_version"))
)
# Parameters are named apart from the columns, which an update would take as SET values.
_RECORD_CHANGE = insert(environment_changes).values(
    environment_id=bindparam("env_id"),
    snapshot_version=bindparam("new_version"),
    flags=bindparam("changed_flags", type_=environment_changes.c.flags.type),
    segments=bindparam("changed_segments", type_=environment_changes.c.segments.type),
    created_at=bindparam("changed_at"),
)
# PostgreSQL: both writes and the notification in one statement (data-modifying CTEs).
_PG_NOTIFY = select(func.pg_notify(bindparam("channel"), bindparam("payload")))
_PG_BUMP = _PG_NOTIFY.add_cte(_SET_VERSION.cte("bumped")).add_cte(_RECORD_CHANGE.cte("recorded"))


def pg_bump_statement(*ctes: Any) -> Any:
    """PostgreSQL: one statement that runs ``ctes`` (data-modifying CTEs of the caller's,
    parameters named apart) and bumps one environment, notifying every replica — the
    parameters of the bump come from :func:`bump_with_next_write`."""
    statement = _PG_NOTIFY
    for cte in (*ctes, _SET_VERSION.cte("bumped"), _RECORD_CHANGE.cte("recorded")):
        statement = statement.add_cte(cte)
    return statement


def bump_with_next_write(
    tx: Transaction, environment_id: int, current: int, flag_keys: Sequence[str]
) -> dict[str, Any]:
    """:func:`bump` of one environment, to be written by the caller's statement made with
    :func:`pg_bump_statement` (PostgreSQL only): its parameters."""
    version = current + 1
    tx.events.append(ChangeEvent((environment_id,), (version,), tuple(sorted(set(flag_keys)))))
    return _bump_params(tx, environment_id, version, flag_keys, ()) | {
        "channel": CHANGE_CHANNEL,
        "payload": f"{environment_id}:{version}",
    }


def _bump_params(
    tx: Transaction,
    environment_id: int,
    version: int,
    flag_keys: Sequence[str],
    segment_keys: Sequence[str],
) -> dict[str, Any]:
    return {
        "env_id": environment_id,
        "new_version": version,
        "changed_flags": sorted(set(flag_keys)),
        "changed_segments": sorted(set(segment_keys)),
        "changed_at": tx.now,
    }


def bump(
    tx: Transaction,
    environment_ids: Sequence[int],
    *,
    flag_keys: Sequence[str] = (),
    segment_keys: Sequence[str] = (),
    current: Sequence[int] | None = None,
) -> None:
    """Advance each environment's snapshot version and record what changed.

    ``current``: the environments' snapshot versions as read earlier in this transaction
    (the write lock is held, so they cannot have moved); read again when not given.
    """
    versions = []
    for index, environment_id in enumerate(environment_ids):
        if current is not None:
            version = current[index] + 1
        else:
            version = (
                tx.conn.execute(
                    select(environments.c.snapshot_version).where(
                        environments.c.id == environment_id
                    )
                ).scalar_one()
                + 1
            )
        recorded = _bump_params(tx, environment_id, version, flag_keys, segment_keys)
        if tx.conn.dialect.name == "postgresql":
            # One round trip: the new version, its record and the notification, which
            # reaches every replica's listener when (and only if) this transaction commits.
            tx.conn.execute(
                _PG_BUMP,
                recorded | {"channel": CHANGE_CHANNEL, "payload": f"{environment_id}:{version}"},
            )
        else:
            tx.conn.execute(_SET_VERSION, recorded)
            tx.conn.execute(_RECORD_CHANGE, recorded)
        versions.append(version)
    if environment_ids:
        tx.events.append(
            ChangeEvent(tuple(environment_ids), tuple(versions), tuple(sorted(set(flag_keys))))
        )
