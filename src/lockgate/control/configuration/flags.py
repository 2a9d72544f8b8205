"""Behaviors (flags): definitions per project, configuration per environment, history.

A definition (kind, variations, owner, risk tier, lifecycle, tags…) is shared by every
environment; each environment has its own versioned configuration (on/off, targets,
rules, default, prerequisites…). Every write is validated by building the affected
environment snapshots with the engine, and commits with its audit entry and a new
snapshot version.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, and_, bindparam, func, insert, or_, select, update

from lockgate.contracts import BEHAVIOR_KINDS, check_config
from lockgate.control import lookup
from lockgate.control.base import Caller, Services, Transaction
from lockgate.control.configuration import snapshots
from lockgate.control.governance import gate
from lockgate.control.governance.gate import Deferred
from lockgate.control.lifecycle import marks
from lockgate.engine import Mode, decode
from lockgate.errors import Conflict, FieldProblem, InvalidInput, NotFound, PolicyRefused
from lockgate.policy import postures
from lockgate.policy.access import Action
from lockgate.policy.changes import AuditAction, Change, ObjectType
from lockgate.policy.classify import Classification, Direction, classify_snapshots, most_severe
from lockgate.policy.postures import Verdict
from lockgate.store import audit
from lockgate.store.tables import (
    audit_head,
    environments,
    flag_config_versions,
    flag_configs,
    flags,
    incidents,
    projects,
)

__all__ = [
    "CONFIG_FIELDS",
    "DEFINITION_FIELDS",
    "RISK_TIERS",
    "create_flag",
    "default_config",
    "flag_history",
    "get_flag",
    "get_flag_config",
    "list_flags",
    "revert_flag",
    "update_flag",
    "update_flag_config",
]

RISK_TIERS = postures.RISK_TIERS
LIFECYCLES = ("temporary", "permanent")
CONFIG_FIELDS = (
    "on",
    "off_variation",
    "targets",
    "rules",
    "default",
    "prerequisites",
    "bucket_by",
    "salt",
    "killed",
    "exclusions",
)
DEFINITION_FIELDS = (
    "name", "description", "owner", "risk_tier", "lifecycle", "tags", "variations",
    "client_visible", "archived", "behavior_kind",
)  # fmt: skip


def default_variations(kind: str) -> list[dict[str, Any]]:
    if kind == "mode":
        return [{"key": m.value, "value": m.value} for m in Mode]
    if kind == "boolean":
        return [{"key": "on", "value": True}, {"key": "off", "value": False}]
    return []


def safe_variation(kind: str, variations: list[dict[str, Any]]) -> str | None:
    """The variation served when a flag is off: ``off`` for modes and booleans, else the last."""
    keys = [v.get("key") for v in variations]
    if kind in ("mode", "boolean") and "off" in keys:
        return "off"
    return str(keys[-1]) if keys else None


def default_config(kind: str, variations: list[dict[str, Any]]) -> dict[str, Any]:
    """A new flag's configuration in every environment: off, serving the safe variation."""
    safe = safe_variation(kind, variations)
    return {
        "on": False,
        "off_variation": safe,
        "targets": [],
        "rules": [],
        "default": {"variation": safe},
        "prerequisites": [],
        "bucket_by": "key",
    }


def _definition_view(row: Row[Any]) -> dict[str, Any]:
    return {
        "key": row.key,
        "name": row.name,
        "description": row.description,
        "owner": row.owner,
        "risk_tier": row.risk_tier,
        "lifecycle": row.lifecycle,
        "tags": row.tags,
        "kind": row.kind,
        "behavior_kind": row.behavior_kind,
        "variations": row.variations,
        "client_visible": row.client_visible,
        "archived": row.archived,
        "version": row.version,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "created_by": row.created_by,
    }


def _config_view(row: Any, env_key: str) -> dict[str, Any]:
    return {
        "environment": env_key,
        "version": row.version,
        "updated_at": row.updated_at,
        "updated_by": row.updated_by,
        **row.config,
    }


def _configs(conn: Connection, flag_id: int, environment_id: int | None = None) -> list[Row[Any]]:
    """The flag's configuration rows, each with its environment's key and id, in order."""
    query = (
        select(flag_configs, environments.c.key.label("env_key"), environments.c.id.label("env_id"))
        .join(environments, environments.c.id == flag_configs.c.environment_id)
        .where(flag_configs.c.flag_id == flag_id)
        .order_by(environments.c.position, environments.c.key)
    )
    if environment_id is not None:
        query = query.where(flag_configs.c.environment_id == environment_id)
    return list(conn.execute(query).all())


def flag_view(conn: Connection, row: Row[Any], environment_id: int | None = None) -> dict[str, Any]:
    view = _definition_view(row)
    view["environments"] = {
        r.env_key: _config_view(r, r.env_key) for r in _configs(conn, row.id, environment_id)
    }
    return view


def _check_definition(values: dict[str, Any]) -> None:
    problems = []
    if "risk_tier" in values and values["risk_tier"] not in RISK_TIERS:
        problems.append(FieldProblem("risk_tier", f"must be one of {', '.join(RISK_TIERS)}"))
    if "lifecycle" in values and values["lifecycle"] not in LIFECYCLES:
        problems.append(FieldProblem("lifecycle", f"must be one of {', '.join(LIFECYCLES)}"))
    if values.get("behavior_kind") not in (None, *BEHAVIOR_KINDS):
        problems.append(
            FieldProblem("behavior_kind", f"must be one of {', '.join(BEHAVIOR_KINDS)}")
        )
    if problems:
        raise InvalidInput("invalid flag definition", problems)


def create_flag(
    svc: Services, caller: Caller, project_key: str, values: dict[str, Any], reason: str = ""
) -> dict[str, Any]:
    from lockgate.control.lookup import check_key

    key = values["key"]
    check_key(key)
    _check_definition(values)
    kind = values["kind"]
    variations = values.get("variations") or default_variations(kind)
    with svc.change() as tx:
        project = caller.project(tx.conn, project_key, Action.WRITE_PROJECT_OBJECT)
        planned = Change(
            action=AuditAction.FLAG_CREATED,
            object_type=ObjectType.FLAG,
            project=project_key,
            object_key=key,
            before=None,
            after=values,
            reason=reason,
            actor_id=caller.actor_id,
            actor_name=caller.actor_name,
        )
        # A new flag is off everywhere: it serves nobody more, so the posture only asks
        # whether its tier needs a stated reason.
        gate.require_reason(planned, gate.posture_of(project), [], [values.get("risk_tier", "low")])
        if tx.conn.execute(
            select(flags.c.id).where(flags.c.project_id == project.id, flags.c.key == key)
        ).first():
            raise Conflict(f"flag {key!r} already exists in project {project_key!r}")
        definition = {
            "name": values.get("name") or key,
            "description": values.get("description", ""),
            "owner": values.get("owner", ""),
            "risk_tier": values.get("risk_tier", "low"),
            "lifecycle": values.get("lifecycle", "temporary"),
            "tags": values.get("tags", []),
            "kind": kind,
            "variations": variations,
            "client_visible": values.get("client_visible", False),
            "behavior_kind": values.get("behavior_kind"),
        }
        config = default_config(kind, variations)
        envs = tx.conn.execute(
            select(environments).where(environments.c.project_id == project.id)
        ).all()
        doc = snapshots.definition_document(key, definition, config, 1)
        for env in envs:
            snapshots.check_snapshot(
                snapshots.build_snapshot(tx.conn, env.id, override_flag=(key, doc)), f"flags.{key}"
            )
        if not envs:
            snapshots.check_snapshot(_lone_snapshot(key, doc), f"flags.{key}")
        tx.conn.execute(
            insert(flags).values(
                project_id=project.id,
                key=key,
                archived=False,
                version=1,
                created_at=tx.now,
                updated_at=tx.now,
                created_by=caller.actor_name,
                **definition,
            )
        )
        row = lookup.flag(tx.conn, project, key)
        if definition["lifecycle"] == "permanent" and reason.strip():
            marks.note_definition(tx, row.id, {}, definition, reason)  # why it stays
        for env in envs:
            write_config(tx, row.id, env.id, 1, config, caller.actor_name, reason or "flag created")
        snapshots.bump(tx, [e.id for e in envs], flag_keys=[key])
        view = flag_view(tx.conn, row)
        tx.record(
            caller,
            {
                "action": planned.action.value,
                "object_type": "flag",
                "object_key": key,
                "project": project_key,
                "after": _definition_view(row),
                "reason": reason,
                "risk_tier": row.risk_tier,
            },
        )
    return view


def _lone_snapshot(key: str, doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "format": "lockgate.snapshot/1",
        "project": "",
        "environment": "",
        "version": 0,
        "flags": {key: doc},
        "segments": {},
    }


def write_config(
    tx: Transaction,
    flag_id: int,
    env_id: int,
    version: int,
    config: dict[str, Any],
    actor: str,
    reason: str,
    audit_seq: int | None = None,
    config_id: int | None = None,
) -> None:
    """Store a configuration version (``config_id``: its row, when the caller knows it)."""
    if config_id is None:
        config_id = tx.conn.execute(
            select(flag_configs.c.id).where(
                flag_configs.c.flag_id == flag_id, flag_configs.c.environment_id == env_id
            )
        ).scalar()
    values = {"version": version, "config": config, "updated_at": tx.now, "updated_by": actor}
    stored = {
        "flag_id": flag_id,
        "environment_id": env_id,
        "version": version,
        "config": config,
        "created_at": tx.now,
        "created_by": actor,
        "reason": reason,
        "audit_seq": audit_seq,
    }
    if config_id is None:
        tx.conn.execute(
            insert(flag_configs).values(flag_id=flag_id, environment_id=env_id, **values)
        )
    elif tx.conn.dialect.name == "postgresql":
        # One round trip on the write path: the configuration and its version row.
        tx.conn.execute(_UPDATE_CONFIG_RECORDING_VERSION, _version_params(stored, config_id))
        return
    else:
        tx.conn.execute(_UPDATE_CONFIG, {"config_id": config_id, **values})
    tx.conn.execute(_INSERT_VERSION, stored)


def _version_params(stored: dict[str, Any], config_id: int) -> dict[str, Any]:
    return {f"v_{name}": value for name, value in stored.items()} | {"config_id": config_id}


# Built once and executed with parameters: the hot write path compiles them once.
_UPDATE_CONFIG = update(flag_configs).where(flag_configs.c.id == bindparam("config_id"))
_INSERT_VERSION = insert(flag_config_versions)
# PostgreSQL: both in one statement (a data-modifying CTE).
_VERSION_FIELDS = (
    "flag_id", "environment_id", "version", "config", "created_at", "created_by", "reason",
    "audit_seq",
)  # fmt: skip
_INSERT_NAMED_VERSION = insert(flag_config_versions).values(
    {
        name: bindparam(f"v_{name}", type_=flag_config_versions.c[name].type)
        for name in _VERSION_FIELDS
    }
)
_UPDATE_NAMED_CONFIG = (
    update(flag_configs)
    .where(flag_configs.c.id == bindparam("config_id"))
    .values(
        version=bindparam("v_version"),
        config=bindparam("v_config", type_=flag_configs.c.config.type),
        updated_at=bindparam("v_created_at"),
        updated_by=bindparam("v_created_by"),
    )
)
# PostgreSQL: the configuration and its version row in one statement (a data-modifying CTE).
_UPDATE_CONFIG_RECORDING_VERSION = _INSERT_NAMED_VERSION.add_cte(
    _UPDATE_NAMED_CONFIG.cte("configured")
)
# PostgreSQL, the direct write path: the audit entry, the configuration, its version row and
# the environment's new snapshot version (with the notification), all in one statement.
_PG_APPLY_CONFIG = snapshots.pg_bump_statement(
    *audit.pg_entry_ctes(),
    _UPDATE_NAMED_CONFIG.cte("configured"),
    _INSERT_NAMED_VERSION.cte("versioned"),
)


def list_flags(
    svc: Services,
    caller: Caller,
    project_key: str,
    *,
    environment: str | None = None,
    tag: str | None = None,
    risk_tier: str | None = None,
    owner: str | None = None,
    behavior_kind: str | None = None,
    text: str | None = None,
    archived: bool | None = False,
    limit: int = 50,
    cursor: str | None = None,
) -> lookup.Page:
    limit, offset = lookup.page_args(limit, cursor)
    with svc.view() as conn:
        project = caller.project(conn, project_key, Action.READ)
        env_id = lookup.environment(conn, project, environment).id if environment else None
        conditions = [flags.c.project_id == project.id]
        if risk_tier:
            conditions.append(flags.c.risk_tier == risk_tier)
        if owner:
            conditions.append(flags.c.owner == owner)
        if behavior_kind:
            conditions.append(flags.c.behavior_kind == behavior_kind)
        if archived is not None:
            conditions.append(flags.c.archived.is_(archived))
        if text:
            like = f"%{text.lower()}%"
            conditions.append(
                or_(
                    func.lower(flags.c.key).like(like),
                    func.lower(flags.c.name).like(like),
                    func.lower(flags.c.description).like(like),
                )
            )
        rows = conn.execute(select(flags).where(and_(*conditions)).order_by(flags.c.key)).all()
        if tag:
            rows = [r for r in rows if tag in (r.tags or [])]
        total = len(rows)
        items = [flag_view(conn, r, env_id) for r in rows[offset : offset + limit]]
    return lookup.make_page(items, limit, offset, total)


def get_flag(svc: Services, caller: Caller, project_key: str, key: str) -> dict[str, Any]:
    with svc.view() as conn:
        project = caller.project(conn, project_key, Action.READ)
        return flag_view(conn, lookup.flag(conn, project, key))


def get_flag_config(
    svc: Services, caller: Caller, project_key: str, key: str, env_key: str
) -> dict[str, Any]:
    """A flag's configuration in one environment, with its version."""
    with svc.view() as conn:
        project = caller.project(conn, project_key, Action.READ)
        env = lookup.environment(conn, project, env_key)
        caller.authorize(
            Action.READ_ENVIRONMENT, project.id, env.id, what=f"project {project_key!r}"
        )
        row = lookup.flag(conn, project, key)
        found = _configs(conn, row.id, env.id)
        if not found:
            raise NotFound(f"flag {key!r} has no configuration in environment {env_key!r}")
        return _config_view(found[0], env_key) | {"flag": key}


def update_flag(
    svc: Services,
    caller: Caller,
    project_key: str,
    key: str,
    changes: dict[str, Any],
    expected_version: int | None,
    reason: str = "",
    *,
    plan: bool = False,
    force: bool = False,
) -> dict[str, Any] | Deferred:
    """Change a flag's definition (shared by all environments), governed like any change.

    A definition change is classified in every environment: archiving reduces, restoring
    or widening what variations mean expands, and lowering the risk tier loosens the
    governance of every environment (an expansion of authority). Archiving is refused
    while code still references the behavior or it is still evaluated, unless ``force``d
    with a reason (:mod:`lockgate.control.lifecycle.guard`); making a behavior permanent
    needs a reason (why the control stays).
    """
    from lockgate.control.lookup import check_version

    _check_definition(changes)
    with svc.change() as tx:
        project = caller.project(tx.conn, project_key, Action.WRITE_PROJECT_OBJECT)
        row = lookup.flag(tx.conn, project, key)
        check_version(row.version, expected_version, f"flag {key!r}")
        before = {k: _definition_view(row)[k] for k in DEFINITION_FIELDS}
        after = {**before, **changes}
        change = Change(
            action=AuditAction.FLAG_ARCHIVED
            if changes.get("archived")
            else AuditAction.FLAG_UPDATED,
            object_type=ObjectType.FLAG,
            project=project_key,
            object_key=key,
            before=before,
            after=after,
            base_version=row.version,
            reason=reason,
            actor_id=caller.actor_id,
            actor_name=caller.actor_name,
        )
        tier = postures.strictest([row.risk_tier, after["risk_tier"]])
        gate.require_reason(change, gate.posture_of(project), [], [tier])
        _check_contract_tier(row, after["risk_tier"])
        if after == before:
            return flag_view(tx.conn, row)
        lifecycle_evidence = _check_lifecycle(tx, project, row, before, after, reason, force)
        verdict, evidence, env_ids = _judge_definition(tx, project, row, after)
        evidence |= lifecycle_evidence
        deferred = gate.govern(
            tx, caller, project, change, verdict, environment_ids=env_ids, plan=plan
        )
        if deferred is not None:
            return deferred
        return _apply_definition(
            tx, caller, project, row, change, evidence | {"policy": verdict.document()}
        )


def _check_lifecycle(
    tx: Transaction,
    project: Row[Any],
    row: Row[Any],
    before: dict[str, Any],
    after: dict[str, Any],
    reason: str,
    force: bool,
) -> dict[str, Any]:
    """Refuse archiving while the behavior is referenced or evaluated (unless forced with
    a reason), and making it permanent without a reason; the evidence of an archive."""
    from lockgate.control.lifecycle.guard import archive_blockers

    becomes_permanent = after["lifecycle"] == "permanent" != before["lifecycle"]
    if becomes_permanent and not reason.strip():
        why = "say why the control stays (a permanent behavior opts out of cleanup)"
        raise InvalidInput(
            f"a reason is required to make flag {row.key!r} permanent",
            [FieldProblem("reason", why)],
        )
    if not after["archived"] or before["archived"]:
        return {}
    quiet = tx.services.archive_quiet_days
    blockers = archive_blockers(tx.conn, project.id, row.key, tx.now, quiet)
    if blockers.any and not force:
        raise Conflict(
            f"flag {row.key!r} cannot be archived: {'; '.join(blockers.reasons())} "
            "(remove them, or archive with force and a reason)",
            blockers=blockers.document(),
        )
    if blockers.any and not reason.strip():
        raise InvalidInput(
            f"a reason is required to archive flag {row.key!r} by force",
            [FieldProblem("reason", "say why it is archived while " + blockers.reasons()[0])],
        )
    return {"archive": {"forced": blockers.any, **blockers.document()}}


def _check_contract_tier(row: Row[Any], tier: str) -> None:
    """A behavior under a contract keeps at least the contract's risk tier."""
    rules = row.contract or {}
    floor = rules.get("risk_level")
    if floor and postures.strictest([floor, tier]) != tier:
        line = (rules.get("lines") or {}).get("risk_level")
        where = f"contract line {line}: risk_level" if line else "contract: risk_level"
        raise PolicyRefused(
            f"flag {row.key!r}: risk tier {tier!r} is lower than its contract's {floor!r} "
            f"({where})",
            rule=where,
        )


def _check_contract(
    target: ConfigTarget, change: Change, rules: dict[str, Any] | None = None
) -> None:
    """Every configuration write keeps the behavior's contract (allowed modes, audience).

    ``rules``: a contract about to be applied, planned against instead of the stored one.
    """
    rules = target.flag.contract if rules is None else rules
    if not rules:
        return
    why = check_config(rules, target.config.config, _config_of(change))
    if why is not None:
        raise PolicyRefused(f"{change.target}: refused by its contract: {why}", rule="contract")


def _judge_definition(
    tx: Transaction, project: Row[Any], row: Row[Any], definition: dict[str, Any]
) -> tuple[Verdict, dict[str, Any], list[int]]:
    """Validate a definition in every environment, classify it, and decide."""
    key = row.key
    found = []
    expanding = []
    env_rows = {
        e.id: e
        for e in tx.conn.execute(
            select(environments).where(environments.c.project_id == project.id)
        )
    }
    for cfg in _configs(tx.conn, row.id):
        doc = snapshots.definition_document(
            key, {**definition, "kind": row.kind}, cfg.config, cfg.version
        )
        before_doc = snapshots.build_snapshot(tx.conn, cfg.env_id)
        document = snapshots.build_snapshot(tx.conn, cfg.env_id, override_flag=(key, doc))
        if definition["archived"]:
            document["flags"].pop(key)
        snapshots.check_snapshot(document, f"flags.{key}")
        result = classify_snapshots(decode(before_doc), decode(document), flags=(key,))
        found.append(result)
        if result.is_expansion:
            expanding.append(env_rows[cfg.env_id])
    lowered = RISK_TIERS.index(definition["risk_tier"]) < RISK_TIERS.index(row.risk_tier)
    if lowered:
        found.append(
            Classification(
                Direction.EXPANSION,
                (key,),
                (f"{key}: lowers the risk tier from {row.risk_tier} to {definition['risk_tier']}",),
            )
        )
        expanding = list(env_rows.values())
    summary = most_severe(found)
    tier = postures.strictest([row.risk_tier, definition["risk_tier"]])
    scopes = gate.scopes_for([tier], expanding)
    if lowered and not expanding:
        scopes = [(tier, "standard")]
    frozen = []
    if summary.is_expansion:
        frozen = gate.frozen_by(
            tx.conn,
            [e.id for e in expanding],
            [
                row,
                gate.Behavior(definition["tags"], definition["risk_tier"], definition["owner"]),
            ],
        )
    verdict = postures.decide(
        summary.direction,
        reasons=summary.reasons,
        scopes=scopes,
        posture=gate.posture_of(project),
        frozen_by=frozen,
    )
    return verdict, gate.classification_note(summary), sorted(e.id for e in expanding)


def _apply_definition(
    tx: Transaction,
    caller: Caller,
    project: Row[Any],
    row: Row[Any],
    change: Change,
    evidence: dict[str, Any],
) -> dict[str, Any]:
    key = row.key
    after = dict(change.after or {})
    before = _definition_view(row)
    envs = _configs(tx.conn, row.id)
    tx.conn.execute(
        update(flags)
        .where(flags.c.id == row.id)
        .values(**after, version=row.version + 1, updated_at=tx.now)
    )
    row = lookup.flag(tx.conn, project, key)
    snapshots.bump(tx, [c.env_id for c in envs], flag_keys=[key])
    marks.note_definition(tx, row.id, before, after, change.reason)
    tx.record(
        caller,
        {
            "action": change.action.value,
            "object_type": "flag",
            "object_key": key,
            "project": change.project,
            "before": before,
            "after": _definition_view(row),
            "reason": change.reason,
            "risk_tier": row.risk_tier,
            "evidence": evidence,
            "refs": dict(change.refs),
        },
    )
    return flag_view(tx.conn, row)


def apply_definition_change(
    tx: Transaction, caller: Caller, change: Change, evidence: dict[str, Any]
) -> dict[str, Any]:
    """Apply an approved definition change (from a change request) if nothing moved."""
    project = caller.project(tx.conn, change.project, Action.WRITE_PROJECT_OBJECT)
    row = lookup.flag(tx.conn, project, change.object_key)
    if row.version != change.base_version:
        view = _definition_view(row)
        raise gate.target_moved(change, row.version, {k: view[k] for k in DEFINITION_FIELDS})
    _judge_definition(tx, project, row, dict(change.after or {}))  # still valid everywhere
    return _apply_definition(tx, caller, project, row, change, evidence)


@dataclass(frozen=True, slots=True)
class RolloutStep:
    """A system actor's advance of an approved plan: which plan and stage, and the stage's
    configuration fields that the change must carry exactly."""

    plan: int
    stage: int
    approved: bool
    next_stage: bool
    config: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ProjectRef:
    id: int
    key: str
    posture: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class EnvironmentRef:
    id: int
    key: str
    protected: bool
    development: bool
    snapshot_version: int
    active_incidents: int = 0


@dataclass(frozen=True, slots=True)
class ConfigRef:
    id: int
    version: int
    config: dict[str, Any]
    updated_at: str
    updated_by: str


@dataclass(frozen=True)
class ConfigTarget:
    """A flag's configuration in one environment, loaded for a write (one query)."""

    project: ProjectRef
    environment: EnvironmentRef
    flag: Row[Any]
    config: ConfigRef


_TARGET_QUERY = (
    select(
        flags,
        projects.c.id.label("p_id"),
        projects.c.key.label("p_key"),
        projects.c.posture.label("p_posture"),
        environments.c.id.label("e_id"),
        environments.c.key.label("e_key"),
        environments.c.protected.label("e_protected"),
        environments.c.development.label("e_development"),
        environments.c.snapshot_version.label("e_snapshot_version"),
        # Active incidents in the environment (most often none: no further query then).
        select(func.count())
        .where(incidents.c.environment_id == environments.c.id, incidents.c.state == "active")
        .scalar_subquery()
        .label("e_incidents"),
        flag_configs.c.id.label("c_id"),
        flag_configs.c.version.label("c_version"),
        flag_configs.c.config.label("c_config"),
        flag_configs.c.updated_at.label("c_updated_at"),
        flag_configs.c.updated_by.label("c_updated_by"),
        # The audit chain's end, read here to save the write path a round trip.
        audit_head.c.seq.label("h_seq"),
        audit_head.c.hash.label("h_hash"),
    )
    .join(projects, projects.c.id == flags.c.project_id)
    .join(flag_configs, flag_configs.c.flag_id == flags.c.id)
    .join(environments, environments.c.id == flag_configs.c.environment_id)
    .join(audit_head, audit_head.c.id == 1)
    .where(
        projects.c.key == bindparam("project_key"),
        environments.c.key == bindparam("env_key"),
        flags.c.key == bindparam("flag_key"),
    )
)


def _config_target(
    tx: Transaction, caller: Caller, project_key: str, key: str, env_key: str
) -> ConfigTarget:
    found = tx.conn.execute(
        _TARGET_QUERY, {"project_key": project_key, "env_key": env_key, "flag_key": key}
    ).first()
    if found is None:
        # Say exactly what is missing, in the order a caller may learn it.
        project = lookup.project(tx.conn, project_key)
        env = lookup.environment(tx.conn, project, env_key)
        caller.authorize(
            Action.WRITE_ENVIRONMENT_CONFIG, project.id, env.id, what=f"project {project_key!r}"
        )
        lookup.flag(tx.conn, project, key)
        raise NotFound(f"flag {key!r} has no configuration in environment {env_key!r}")
    caller.authorize(
        Action.WRITE_ENVIRONMENT_CONFIG, found.p_id, found.e_id, what=f"project {project_key!r}"
    )
    if found.archived:
        raise Conflict(f"flag {key!r} is archived; restore it before changing its configuration")
    tx.saw_audit_head(found.h_seq, found.h_hash)
    return ConfigTarget(
        ProjectRef(found.p_id, found.p_key, found.p_posture),
        EnvironmentRef(
            found.e_id,
            found.e_key,
            found.e_protected,
            found.e_development,
            found.e_snapshot_version,
            found.e_incidents,
        ),
        found,
        ConfigRef(
            found.c_id, found.c_version, found.c_config, found.c_updated_at, found.c_updated_by
        ),
    )


def _canonical(config: dict[str, Any]) -> dict[str, Any]:
    """Reversal fields at their defaults are left out (not killed, no exclusions), so a
    configuration reads the same whether or not it ever had them."""
    return {
        k: v
        for k, v in config.items()
        if not (k in ("killed", "exclusions", "incidents") and not v)
    }


def _config_of(change: Change) -> dict[str, Any]:
    return {k: v for k, v in (change.after or {}).items() if k != "version"}


def _judge_config(
    tx: Transaction,
    target: ConfigTarget,
    change: Change,
    *,
    system: bool = False,
    plan_step: postures.PlanStep | None = None,
    expiry: bool = False,
) -> tuple[Verdict, snapshots.CheckedUpdate, dict[str, Any]]:
    """Validate the new configuration and decide what it needs."""
    env = target.environment
    doc = snapshots.flag_document(target.flag, _config_of(change), target.config.version + 1)
    checked = snapshots.check_flag_update(tx, env.id, env.snapshot_version, target.flag.key, doc)
    found = classify_snapshots(checked.before, checked.after, flags=(target.flag.key,))
    scopes = [(target.flag.risk_tier, gate.environment_class(env))]
    frozen = []
    if env.active_incidents and found.is_expansion:
        frozen = gate.frozen_by(tx.conn, [env.id], [target.flag])
    verdict = postures.decide(
        found.direction,
        reasons=found.reasons,
        scopes=scopes,
        posture=gate.posture_of(target.project),
        frozen_by=frozen,
        reversal=change.action is AuditAction.FLAG_KILLED,
        system=system,
        plan_step=plan_step,
        expiry=expiry,
    )
    return verdict, checked, gate.classification_note(found)


def _only_lifts(before: dict[str, Any], after: dict[str, Any], ids: tuple[str, ...]) -> bool:
    """``after`` is ``before`` without exactly the exclusions ``ids``, and nothing else."""
    rest_before = {k: v for k, v in before.items() if k != "exclusions"}
    rest_after = {k: v for k, v in after.items() if k != "exclusions"}
    kept = [x for x in before.get("exclusions") or [] if x.get("id") not in ids]
    removed = {x.get("id") for x in before.get("exclusions") or []} - {x.get("id") for x in kept}
    return (
        rest_before == rest_after
        and kept == list(after.get("exclusions") or [])
        and (removed == set(ids))
    )


def _apply_config(
    tx: Transaction,
    caller: Caller,
    target: ConfigTarget,
    change: Change,
    checked: snapshots.CheckedUpdate,
    evidence: dict[str, Any],
) -> dict[str, Any]:
    row, env, cfg = target.flag, target.environment, target.config
    version = cfg.version + 1
    config = _config_of(change)
    entry, entry_params = tx.record_with_next_write(
        caller,
        {
            "action": change.action.value,
            "object_type": "flag",
            "object_key": row.key,
            "project": change.project,
            "environment": env.key,
            "before": {"version": cfg.version, **cfg.config},
            "after": {"version": version, **config},
            "reason": change.reason,
            "risk_tier": row.risk_tier,
            "evidence": evidence,
            "refs": dict(change.refs),
        },
    )
    if entry_params is None:
        write_config(
            tx, row.id, env.id, version, config, caller.actor_name, change.reason, entry.seq, cfg.id
        )
        snapshots.bump(tx, [env.id], flag_keys=[row.key], current=[env.snapshot_version])
    else:  # PostgreSQL: everything in one statement, one round trip under the write lock
        stored = {
            "flag_id": row.id, "environment_id": env.id, "version": version, "config": config,
            "created_at": tx.now, "created_by": caller.actor_name, "reason": change.reason,
            "audit_seq": entry.seq,
        }  # fmt: skip
        bumped = snapshots.bump_with_next_write(tx, env.id, env.snapshot_version, [row.key])
        tx.conn.execute(_PG_APPLY_CONFIG, entry_params | _version_params(stored, cfg.id) | bumped)
    checked.remember(tx)
    applied = {
        "environment": env.key,
        "version": version,
        "updated_at": tx.now,
        "updated_by": caller.actor_name,
        **config,
        "flag": row.key,
    }
    policy = evidence.get("policy")
    if policy:  # what the policy decided: a reduction applied at once, or an allowed expansion
        applied["policy"] = {k: policy[k] for k in ("outcome", "direction", "rule") if k in policy}
    return applied


def update_flag_config(
    svc: Services,
    caller: Caller,
    project_key: str,
    key: str,
    env_key: str,
    changes: dict[str, Any],
    expected_version: int | None,
    reason: str = "",
    action: AuditAction = AuditAction.FLAG_CONFIGURED,
    refs: dict[str, Any] | None = None,
    *,
    plan: bool = False,
    contract_rules: dict[str, Any] | None = None,
    rollout: RolloutStep | None = None,
    evidence: dict[str, Any] | None = None,
    expiring: tuple[str, ...] = (),
) -> dict[str, Any] | Deferred:
    """Change a flag's configuration in one environment (a new version of it).

    Planned as a typed change and decided by the project's posture: applied now (every
    reduction, and expansions the posture allows directly), proposed as a change request,
    or refused. ``plan`` answers what would happen without doing it.

    A system caller only reduces, or — with ``rollout`` — applies the next stage of an
    approved rollout plan, checked here field by field against the stage's configuration.
    ``evidence`` joins the audit entry's evidence (what an automatic action saw).
    ``expiring`` names automatic, time-boxed exclusions whose time is up: a system caller
    may lift exactly those, and change nothing else with it.
    """
    from lockgate.control.lookup import check_version

    unknown = sorted(set(changes) - set(CONFIG_FIELDS))
    if unknown:
        raise InvalidInput(
            "unknown configuration fields",
            [FieldProblem(f, "unknown or read-only field") for f in unknown],
        )
    with svc.change() as tx:
        target = _config_target(tx, caller, project_key, key, env_key)
        cfg = target.config
        check_version(cfg.version, expected_version, f"flag {key!r} in {env_key!r}")
        config = _canonical({**cfg.config, **changes})
        change = Change(
            action=action,
            object_type=ObjectType.FLAG,
            project=project_key,
            environment=env_key,
            object_key=key,
            before={"version": cfg.version, **cfg.config},
            after={"version": cfg.version + 1, **config},
            base_version=cfg.version,
            reason=reason,
            actor_id=caller.actor_id,
            actor_name=caller.actor_name,
            refs=refs or {},
        )
        tier = target.flag.risk_tier
        scopes = [(tier, gate.environment_class(target.environment))]
        gate.require_reason(change, gate.posture_of(target.project), scopes, [tier])
        if config == cfg.config:
            return _config_view(cfg, env_key) | {"flag": key}
        _check_contract(target, change, contract_rules if plan else None)
        step = None
        if rollout is not None:
            step = postures.PlanStep(
                plan=rollout.plan,
                stage=rollout.stage,
                approved=rollout.approved,
                next_stage=rollout.next_stage,
                matches=config == _canonical({**cfg.config, **rollout.config}),
            )
        verdict, checked, found = _judge_config(
            tx, target, change, system=caller.automatic, plan_step=step,
            expiry=bool(expiring) and _only_lifts(cfg.config, config, expiring),
        )  # fmt: skip
        if evidence:
            found = {**found, **evidence}
        deferred = gate.govern(
            tx,
            caller,
            target.project,
            change,
            verdict,
            environment_ids=[target.environment.id],
            plan=plan,
        )
        if deferred is not None:
            return deferred
        return _apply_config(
            tx, caller, target, change, checked, found | {"policy": verdict.document()}
        )


def apply_config_change(
    tx: Transaction, caller: Caller, change: Change, evidence: dict[str, Any]
) -> dict[str, Any]:
    """Apply an approved configuration change (from a change request) if nothing moved."""
    target = _config_target(tx, caller, change.project, change.object_key, change.environment or "")
    current = target.config
    if current.version != change.base_version:
        raise gate.target_moved(
            change, current.version, {"version": current.version, **current.config}
        )
    _check_contract(target, change)
    env = target.environment
    doc = snapshots.flag_document(target.flag, _config_of(change), target.config.version + 1)
    checked = snapshots.check_flag_update(tx, env.id, env.snapshot_version, target.flag.key, doc)
    return _apply_config(tx, caller, target, change, checked, evidence)


def replan_config_change(
    tx: Transaction, caller: Caller, old: Change, changes: dict[str, Any], reason: str
) -> tuple[Change, Verdict]:
    """A proposed configuration change edited: planned again against the current target."""
    unknown = sorted(set(changes) - set(CONFIG_FIELDS))
    if unknown:
        raise InvalidInput(
            "unknown configuration fields",
            [FieldProblem(f, "unknown or read-only field") for f in unknown],
        )
    target = _config_target(tx, caller, old.project, old.object_key, old.environment or "")
    cfg = target.config
    config = _canonical({**_config_of(old), **changes})
    change = Change(
        action=old.action,
        object_type=ObjectType.FLAG,
        project=old.project,
        environment=old.environment,
        object_key=old.object_key,
        before={"version": cfg.version, **cfg.config},
        after={"version": cfg.version + 1, **config},
        base_version=cfg.version,
        reason=reason,
        actor_id=caller.actor_id,
        actor_name=caller.actor_name,
        refs=old.refs,
    )
    tier = target.flag.risk_tier
    scopes = [(tier, gate.environment_class(target.environment))]
    gate.require_reason(change, gate.posture_of(target.project), scopes, [tier])
    _check_contract(target, change)
    verdict, _, _ = _judge_config(tx, target, change)
    if verdict.outcome is postures.Outcome.REFUSE:
        raise PolicyRefused(
            f"{change.target}: refused by the project's posture ({verdict.rule})", rule=verdict.rule
        )
    return change, verdict


def flag_history(
    svc: Services,
    caller: Caller,
    project_key: str,
    key: str,
    env_key: str,
    limit: int = 50,
    cursor: str | None = None,
) -> lookup.Page:
    limit, offset = lookup.page_args(limit, cursor)
    with svc.view() as conn:
        project = caller.project(conn, project_key, Action.READ)
        env = lookup.environment(conn, project, env_key)
        row = lookup.flag(conn, project, key)
        where = and_(
            flag_config_versions.c.flag_id == row.id,
            flag_config_versions.c.environment_id == env.id,
        )
        total = conn.execute(
            select(func.count()).select_from(flag_config_versions).where(where)
        ).scalar_one()
        rows = conn.execute(
            select(flag_config_versions)
            .where(where)
            .order_by(flag_config_versions.c.version.desc())
            .offset(offset)
            .limit(limit)
        ).all()
    items = [
        {
            "version": r.version,
            "created_at": r.created_at,
            "created_by": r.created_by,
            "reason": r.reason,
            "audit_seq": r.audit_seq,
            "config": r.config,
        }
        for r in rows
    ]
    return lookup.make_page(items, limit, offset, total)


def revert_flag(
    svc: Services,
    caller: Caller,
    project_key: str,
    key: str,
    env_key: str,
    to_version: int,
    expected_version: int | None,
    reason: str = "",
    *,
    plan: bool = False,
) -> dict[str, Any] | Deferred:
    """Make an earlier version's configuration current again, as a new version.

    Classified like any other change: a revert to a wider version is an expansion.
    """
    with svc.view() as conn:
        project = caller.project(conn, project_key, Action.READ)
        env = lookup.environment(conn, project, env_key)
        row = lookup.flag(conn, project, key)
        old = conn.execute(
            select(flag_config_versions.c.config).where(
                flag_config_versions.c.flag_id == row.id,
                flag_config_versions.c.environment_id == env.id,
                flag_config_versions.c.version == to_version,
            )
        ).first()
    if old is None:
        raise NotFound(f"flag {key!r} has no version {to_version} in environment {env_key!r}")
    # Targeting comes back as it was (exclusions included); the kill switch is not part of
    # it (only a restore lifts a kill), nor are incidents (only ending one lifts it).
    restored = {k: v for k, v in old.config.items() if k in CONFIG_FIELDS and k != "killed"}
    restored.setdefault("exclusions", [])
    return update_flag_config(
        svc,
        caller,
        project_key,
        key,
        env_key,
        restored,
        expected_version,
        reason,
        action=AuditAction.FLAG_REVERTED,
        refs={"reverted_to_version": to_version},
        plan=plan,
    )
