"""Projects and their ordered environments."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, func, insert, select, update

from lockgate import privacy
from lockgate.control import lookup
from lockgate.control.base import Caller, Services, Transaction
from lockgate.control.configuration.flags import default_config
from lockgate.control.governance import gate
from lockgate.control.governance.gate import Deferred
from lockgate.control.lookup import check_key, check_version
from lockgate.errors import Conflict, FieldProblem, InvalidInput
from lockgate.policy import postures
from lockgate.policy.access import Action
from lockgate.policy.changes import AuditAction, Change, ObjectType
from lockgate.policy.classify import Direction
from lockgate.store.tables import environments, flag_config_versions, flag_configs, flags, projects

__all__ = [
    "create_environment",
    "create_project",
    "environment_view",
    "get_environment",
    "get_project",
    "list_environments",
    "list_projects",
    "project_view",
    "update_environment",
    "update_project",
]


def privacy_document(stored: Any) -> dict[str, Any]:
    """An environment's privacy settings in their JSON form (empty when never set)."""
    stored = stored or {}
    return {
        "private_attributes": list(stored.get("private_attributes", [])),
        "rules": dict(stored.get("rules", {})),
    }


def _privacy_setting(value: Any) -> dict[str, Any]:
    """Checked privacy settings in canonical form; bad fields are named ``privacy.…``."""
    policy, problems = privacy.parse_settings(value)
    if policy is None:
        raise InvalidInput(
            "invalid privacy settings",
            [FieldProblem(f"privacy.{name}".rstrip("."), message) for name, message in problems],
        )
    return policy.document()


def project_view(row: Row[Any]) -> dict[str, Any]:
    return {
        "key": row.key,
        "name": row.name,
        "description": row.description,
        "version": row.version,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "created_by": row.created_by,
    }


def environment_view(row: Row[Any]) -> dict[str, Any]:
    return {
        "key": row.key,
        "name": row.name,
        "position": row.position,
        "protected": row.protected,
        "development": row.development,
        "privacy": privacy_document(row.privacy),
        "version": row.version,
        "snapshot_version": row.snapshot_version,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def create_project(
    svc: Services, caller: Caller, key: str, name: str, description: str = ""
) -> dict[str, Any]:
    caller.require_system_admin()
    check_key(key)
    with svc.change() as tx:
        if tx.conn.execute(select(projects.c.id).where(projects.c.key == key)).first():
            raise Conflict(f"project {key!r} already exists")
        tx.conn.execute(
            insert(projects).values(
                key=key,
                name=name or key,
                description=description,
                version=1,
                created_at=tx.now,
                updated_at=tx.now,
                created_by=caller.actor_name,
            )
        )
        row = lookup.project(tx.conn, key)
        view = project_view(row)
        tx.record(
            caller,
            {
                "action": AuditAction.PROJECT_CREATED.value,
                "object_type": "project",
                "object_key": key,
                "project": key,
                "after": view,
            },
        )
    return view


def list_projects(svc: Services, caller: Caller) -> list[dict[str, Any]]:
    with svc.view() as conn:
        rows = conn.execute(select(projects).order_by(projects.c.key)).all()
    principal = caller.principal
    return [project_view(r) for r in rows if principal is None or principal.sees_project(r.id)]


def get_project(svc: Services, caller: Caller, key: str) -> dict[str, Any]:
    with svc.view() as conn:
        row = lookup.project(conn, key)
    caller.authorize(Action.READ, row.id, what=f"project {key!r}")
    return project_view(row)


def update_project(
    svc: Services,
    caller: Caller,
    key: str,
    changes: dict[str, Any],
    expected_version: int | None,
    reason: str = "",
) -> dict[str, Any]:
    with svc.change() as tx:
        row = lookup.project(tx.conn, key)
        caller.authorize(Action.ADMIN_PROJECT, row.id, what=f"project {key!r}")
        check_version(row.version, expected_version, f"project {key!r}")
        before = project_view(row)
        if all(getattr(row, name) == value for name, value in changes.items()):
            return before  # nothing changes: no new version, no audit entry
        tx.conn.execute(
            update(projects)
            .where(projects.c.id == row.id)
            .values(**changes, version=row.version + 1, updated_at=tx.now)
        )
        after = project_view(lookup.project(tx.conn, key))
        tx.record(
            caller,
            {
                "action": AuditAction.PROJECT_UPDATED.value,
                "object_type": "project",
                "object_key": key,
                "project": key,
                "before": before,
                "after": after,
                "reason": reason,
            },
        )
    return after


def list_environments(svc: Services, caller: Caller, project_key: str) -> list[dict[str, Any]]:
    with svc.view() as conn:
        project = caller.project(conn, project_key, Action.READ)
        rows = conn.execute(
            select(environments)
            .where(environments.c.project_id == project.id)
            .order_by(environments.c.position, environments.c.key)
        ).all()
    return [environment_view(r) for r in rows]


def get_environment(svc: Services, caller: Caller, project_key: str, key: str) -> dict[str, Any]:
    with svc.view() as conn:
        project = caller.project(conn, project_key, Action.READ)
        return environment_view(lookup.environment(conn, project, key))


def create_environment(
    svc: Services,
    caller: Caller,
    project_key: str,
    key: str,
    name: str = "",
    protected: bool = False,
    position: int | None = None,
    development: bool = False,
) -> dict[str, Any]:
    check_key(key)
    with svc.change() as tx:
        project = caller.project(tx.conn, project_key, Action.ADMIN_PROJECT)
        if tx.conn.execute(
            select(environments.c.id).where(
                environments.c.project_id == project.id, environments.c.key == key
            )
        ).first():
            raise Conflict(f"environment {key!r} already exists in project {project_key!r}")
        if position is None:
            position = (
                tx.conn.execute(
                    select(func.max(environments.c.position)).where(
                        environments.c.project_id == project.id
                    )
                ).scalar()
                or 0
            ) + 1
        tx.conn.execute(
            insert(environments).values(
                project_id=project.id,
                key=key,
                name=name or key,
                position=position,
                protected=protected,
                development=development,
                version=1,
                snapshot_version=1,
                created_at=tx.now,
                updated_at=tx.now,
                created_by=caller.actor_name,
            )
        )
        env = lookup.environment(tx.conn, project, key)
        _configure_existing_flags(tx.conn, project.id, env.id, tx.now, caller.actor_name)
        view = environment_view(env)
        tx.record(
            caller,
            {
                "action": AuditAction.ENVIRONMENT_CREATED.value,
                "object_type": "environment",
                "object_key": key,
                "project": project_key,
                "environment": key,
                "after": view,
            },
        )
    return view


def _configure_existing_flags(
    conn: Connection, project_id: int, environment_id: int, now: str, actor: str
) -> None:
    for flag in conn.execute(select(flags).where(flags.c.project_id == project_id)).all():
        config = default_config(flag.kind, flag.variations)
        state = (flag.contract or {}).get("default_state")
        if state is not None:
            # The contract's default_state is what a new environment gets (still off).
            config |= {"off_variation": state, "default": {"variation": state}}
        conn.execute(
            insert(flag_configs).values(
                flag_id=flag.id,
                environment_id=environment_id,
                version=1,
                config=config,
                updated_at=now,
                updated_by=actor,
            )
        )
        conn.execute(
            insert(flag_config_versions).values(
                flag_id=flag.id,
                environment_id=environment_id,
                version=1,
                config=config,
                created_at=now,
                created_by=actor,
                reason="environment created",
            )
        )


def update_environment(
    svc: Services,
    caller: Caller,
    project_key: str,
    key: str,
    changes: dict[str, Any],
    expected_version: int | None,
    reason: str = "",
    *,
    plan: bool = False,
) -> dict[str, Any] | Deferred:
    """Change an environment. Loosening its class (no longer protected, or marked as a
    development environment) lowers what expansions there need, so it needs an approval
    from a project approver, like a posture change."""
    with svc.change() as tx:
        project = caller.project(tx.conn, project_key, Action.ADMIN_PROJECT)
        env = lookup.environment(tx.conn, project, key)
        check_version(env.version, expected_version, f"environment {key!r}")
        before = environment_view(env)
        fields = ("name", "position", "protected", "development", "privacy")
        if changes.get("privacy") is not None:
            changes = {**changes, "privacy": _privacy_setting(changes["privacy"])}
        after = {f: changes.get(f, before[f]) for f in fields}
        if all(after[f] == before[f] for f in fields):
            return before
        change = Change(
            action=AuditAction.ENVIRONMENT_UPDATED,
            object_type=ObjectType.ENVIRONMENT,
            project=project_key,
            environment=key,
            object_key=key,
            before={f: before[f] for f in fields},
            after=after,
            base_version=env.version,
            reason=reason,
            actor_id=caller.actor_id,
            actor_name=caller.actor_name,
        )
        old_class = postures.environment_class(
            protected=before["protected"], development=before["development"]
        )
        new_class = postures.environment_class(
            protected=after["protected"], development=after["development"]
        )
        opened = privacy.loosened(_policy(before["privacy"]), _policy(after["privacy"]))
        loosens_class = postures.ENVIRONMENT_CLASSES.index(
            new_class
        ) < postures.ENVIRONMENT_CLASSES.index(old_class)
        what = [f"environment class {old_class} → {new_class}"] if loosens_class else []
        if opened:
            what.append(f"records more openly: {', '.join(opened)}")
        verdict = _governance_change_verdict(bool(what), "; ".join(what))
        deferred = gate.govern(tx, caller, project, change, verdict, environment_ids=[], plan=plan)
        if deferred is not None:
            return deferred
        return _apply_environment(tx, caller, project, env, change, {"policy": verdict.document()})


def _policy(document: dict[str, Any]) -> privacy.RedactionPolicy:
    policy, _ = privacy.parse_settings(document)
    return policy or privacy.RedactionPolicy()


def _governance_change_verdict(loosens: bool, what: str) -> postures.Verdict:
    if not loosens:
        return postures.Verdict(
            postures.Outcome.APPLY, "governance-not-loosened", 0, Direction.NONE
        )
    return postures.Verdict(
        postures.Outcome.REQUEST,
        "governance-change-needs-approval",
        postures.POSTURE_CHANGE_APPROVALS,
        Direction.EXPANSION,
        (f"loosens governance: {what}",),
    )


def _apply_environment(
    tx: Transaction,
    caller: Caller,
    project: Row[Any],
    env: Row[Any],
    change: Change,
    evidence: dict[str, Any],
) -> dict[str, Any]:
    before = environment_view(env)
    tx.conn.execute(
        update(environments)
        .where(environments.c.id == env.id)
        .values(**dict(change.after or {}), version=env.version + 1, updated_at=tx.now)
    )
    after = environment_view(lookup.environment(tx.conn, project, env.key))
    tx.record(
        caller,
        {
            "action": change.action.value,
            "object_type": "environment",
            "object_key": env.key,
            "project": change.project,
            "environment": env.key,
            "before": before,
            "after": after,
            "reason": change.reason,
            "evidence": evidence,
            "refs": dict(change.refs),
        },
    )
    return after


def apply_environment_change(
    tx: Transaction, caller: Caller, change: Change, evidence: dict[str, Any]
) -> dict[str, Any]:
    project = caller.project(tx.conn, change.project, Action.ADMIN_PROJECT)
    env = lookup.environment(tx.conn, project, change.object_key)
    if env.version != change.base_version:
        view = environment_view(env)
        raise gate.target_moved(
            change, env.version, {f: view[f] for f in dict(change.before or {})}
        )
    return _apply_environment(tx, caller, project, env, change, evidence)


def posture_view(row: Row[Any]) -> dict[str, Any]:
    return {
        "project": row.key,
        "posture": gate.posture_of(row),
        "customized": row.posture is not None,
        "version": row.posture_version,
        "defaults": postures.DEFAULT_POSTURE,
    }


def get_posture(svc: Services, caller: Caller, project_key: str) -> dict[str, Any]:
    with svc.view() as conn:
        return posture_view(caller.project(conn, project_key, Action.READ))


def update_posture(
    svc: Services,
    caller: Caller,
    project_key: str,
    posture: object,
    expected_version: int | None,
    reason: str = "",
    *,
    plan: bool = False,
) -> dict[str, Any] | Deferred:
    """Propose a new posture table; it applies once a project approver approves it."""
    table, problems = postures.normalize_posture(posture)
    if problems:
        raise InvalidInput(
            "invalid posture table", [FieldProblem(p.path, p.message) for p in problems]
        )
    with svc.change() as tx:
        project = caller.project(tx.conn, project_key, Action.ADMIN_PROJECT)
        check_version(project.posture_version, expected_version, f"posture of {project_key!r}")
        current = gate.posture_of(project)
        if table == current and project.posture is not None:
            return posture_view(project)
        change = Change(
            action=AuditAction.POSTURE_UPDATED,
            object_type=ObjectType.PROJECT,
            project=project_key,
            object_key=project_key,
            before=current,
            after=table,
            base_version=project.posture_version,
            reason=reason,
            actor_id=caller.actor_id,
            actor_name=caller.actor_name,
        )
        if not reason.strip():
            raise InvalidInput(
                "a reason is required to change the posture table",
                [FieldProblem("reason", "required for posture changes")],
            )
        verdict = _governance_change_verdict(True, "the posture table changes")
        deferred = gate.govern(tx, caller, project, change, verdict, environment_ids=[], plan=plan)
        if deferred is not None:
            return deferred
        raise AssertionError("posture changes always wait for an approval")  # pragma: no cover


def apply_posture_change(
    tx: Transaction, caller: Caller, change: Change, evidence: dict[str, Any]
) -> dict[str, Any]:
    project = caller.project(tx.conn, change.project, Action.ADMIN_PROJECT)
    if project.posture_version != change.base_version:
        raise gate.target_moved(change, project.posture_version, gate.posture_of(project))
    tx.conn.execute(
        update(projects)
        .where(projects.c.id == project.id)
        .values(posture=dict(change.after or {}), posture_version=project.posture_version + 1)
    )
    row = lookup.project(tx.conn, change.project)
    tx.record(
        caller,
        {
            "action": change.action.value,
            "object_type": "project",
            "object_key": change.project,
            "project": change.project,
            "before": change.before,
            "after": gate.posture_of(row),
            "reason": change.reason,
            "evidence": evidence,
            "refs": dict(change.refs),
        },
    )
    return posture_view(row)
