"""Alert triggers: external monitoring fires a configured reduction through a secret URL.

A trigger belongs to one behavior in one environment and names one reduction:

* ``kill`` — the kill switch (``killed``; everyone gets the fallback, reason ``KILLED``;
  only ``restore`` lifts it);
* ``fallback`` — the behavior is switched off (``on: false``; everyone gets its off
  variation, the fallback, reason ``OFF``);
* ``exclude`` — an audience (``segment:S``, ``account:A``, ``region:R``, ``attr=value``)
  gets the fallback (an exclusion with id ``alert-<trigger id>``);
* ``pause_rollout`` — the behavior's staged rollout plan in the environment is paused: the
  guardrail cycle stops advancing it (exposure stays where it is; resuming is a person's
  governed decision).

Creating and deleting triggers needs the ``admin`` role in the environment (a trigger's
secret lets its holder reduce exposure) and is audited. The secret is shown once, at
creation; only its SHA-256 is stored, compared in constant time.

Firing (:func:`fire`) reads Alertmanager's webhook body. Each ``firing`` alert applies the
reduction once per alert episode (its fingerprint and ``startsAt``): Alertmanager's repeated
notifications of the same alert apply nothing again. The reduction goes through the
governed change path like a person's (``update_flag_config``), as the system actor
``alert-trigger:<id>``, with the alert in the audit entry's ``refs``. A ``resolved`` alert
never re-expands anything: it is acknowledged and ignored — lifting a reduction is an
expansion, which a person decides (``restore``, lifting the exclusion).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Any

from sqlalchemy import Row, delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from lockgate.control import lookup
from lockgate.control.base import Caller, Services, system_caller
from lockgate.control.configuration import flags as flag_use
from lockgate.control.governance.gate import Deferred
from lockgate.control.guardrails import definitions as plan_use
from lockgate.control.reversal.kill import audience_clauses
from lockgate.errors import FieldProblem, InvalidInput, LockgateError, NotFound, Unauthenticated
from lockgate.guardrails import plans
from lockgate.policy.access import Action
from lockgate.policy.changes import AuditAction
from lockgate.signals.alertmanager import Alert
from lockgate.store.tables import alert_trigger_firings, alert_triggers

__all__ = [
    "ACTIONS",
    "create_trigger",
    "delete_trigger",
    "fire",
    "get_trigger",
    "hook_path",
    "list_triggers",
]

ACTIONS = ("kill", "fallback", "exclude", "pause_rollout")
MAX_PER_ENVIRONMENT = 100
_PUBLIC_ID = re.compile(r"at_[0-9a-f]{16}\Z")
_NO_SUCH_HASH = hashlib.sha256(b"no such trigger").hexdigest()


def hook_path(public_id: str, secret: str) -> str:
    return f"/hooks/alerts/{public_id}/{secret}"


def _view(row: Row[Any], env_key: str) -> dict[str, Any]:
    return {
        "id": row.public_id,
        "name": row.name,
        "environment": env_key,
        "flag": row.flag,
        "action": row.action,
        "audience": row.audience,
        "description": row.description,
        "created_at": row.created_at,
        "created_by": row.created_by,
    }


def _check_action(action: str, audience: str | None) -> None:
    if action not in ACTIONS:
        raise InvalidInput(
            f"unknown action {action!r}",
            [FieldProblem("action", f"one of {', '.join(ACTIONS)}")],
        )
    if action == "exclude":
        if not audience:
            raise InvalidInput(
                "an exclude trigger names its audience",
                [FieldProblem("audience", "segment:KEY, account:ID, region:NAME or attr=value")],
            )
        audience_clauses(audience)  # refuses what cannot be read, naming the field
    elif audience is not None:
        raise InvalidInput(
            f"a {action} trigger has no audience",
            [FieldProblem("audience", "only exclude triggers name an audience")],
        )


def create_trigger(
    svc: Services,
    caller: Caller,
    project_key: str,
    env_key: str,
    *,
    name: str,
    flag: str,
    action: str,
    audience: str | None = None,
    description: str = "",
    reason: str = "",
) -> dict[str, Any]:
    """Create a trigger; the result's ``secret`` and ``url_path`` are shown only now."""
    _check_action(action, audience)
    secret = secrets.token_urlsafe(32)
    public_id = f"at_{secrets.token_hex(8)}"
    with svc.change() as tx:
        project = lookup.project(tx.conn, project_key)
        env = lookup.environment(tx.conn, project, env_key)
        caller.authorize(
            Action.ADMIN_ENVIRONMENT, project.id, env.id, what=f"project {project_key!r}"
        )
        lookup.flag(tx.conn, project, flag)
        count = tx.conn.execute(
            select(func.count())
            .select_from(alert_triggers)
            .where(alert_triggers.c.environment_id == env.id)
        ).scalar_one()
        if count >= MAX_PER_ENVIRONMENT:
            raise InvalidInput(
                "too many alert triggers",
                [FieldProblem("name", f"at most {MAX_PER_ENVIRONMENT} per environment")],
            )
        tx.conn.execute(
            insert(alert_triggers).values(
                public_id=public_id,
                project_id=project.id,
                environment_id=env.id,
                name=name.strip() or f"{action} {flag}",
                flag=flag,
                action=action,
                audience=audience,
                description=description,
                secret_hash=_hash(secret),
                created_at=tx.now,
                created_by=caller.actor_name,
            )
        )
        view = _view(_find(tx.conn, env, public_id), env_key)
        tx.record(
            caller,
            {
                "action": AuditAction.ALERT_TRIGGER_CREATED.value,
                "object_type": "alert_trigger",
                "object_key": public_id,
                "project": project_key,
                "environment": env_key,
                "after": view,
                "reason": reason,
            },
        )
    return view | {"secret": secret, "url_path": hook_path(public_id, secret)}


def _find(conn: Any, env: Row[Any], public_id: str) -> Row[Any]:
    row = None
    if _PUBLIC_ID.match(public_id):
        row = conn.execute(
            select(alert_triggers).where(
                alert_triggers.c.environment_id == env.id,
                alert_triggers.c.public_id == public_id,
            )
        ).first()
    if row is None:
        raise NotFound(f"alert trigger {public_id!r} not found in environment {env.key!r}")
    return row  # type: ignore[no-any-return]


def _readable(conn: Any, caller: Caller, project_key: str, env_key: str) -> Row[Any]:
    project = lookup.project(conn, project_key)
    env = lookup.environment(conn, project, env_key)
    caller.authorize(Action.READ_ENVIRONMENT, project.id, env.id, what=f"project {project_key!r}")
    return env


def list_triggers(
    svc: Services, caller: Caller, project_key: str, env_key: str
) -> list[dict[str, Any]]:
    with svc.view() as conn:
        env = _readable(conn, caller, project_key, env_key)
        rows = conn.execute(
            select(alert_triggers)
            .where(alert_triggers.c.environment_id == env.id)
            .order_by(alert_triggers.c.id)
        ).all()
    return [_view(r, env_key) for r in rows]


def get_trigger(
    svc: Services, caller: Caller, project_key: str, env_key: str, public_id: str
) -> dict[str, Any]:
    with svc.view() as conn:
        env = _readable(conn, caller, project_key, env_key)
        return _view(_find(conn, env, public_id), env_key)


def delete_trigger(
    svc: Services,
    caller: Caller,
    project_key: str,
    env_key: str,
    public_id: str,
    reason: str = "",
) -> None:
    """Delete a trigger: its URL stops working at once."""
    with svc.change() as tx:
        project = lookup.project(tx.conn, project_key)
        env = lookup.environment(tx.conn, project, env_key)
        caller.authorize(
            Action.ADMIN_ENVIRONMENT, project.id, env.id, what=f"project {project_key!r}"
        )
        row = _find(tx.conn, env, public_id)
        before = _view(row, env_key)
        tx.conn.execute(delete(alert_triggers).where(alert_triggers.c.id == row.id))
        tx.record(
            caller,
            {
                "action": AuditAction.ALERT_TRIGGER_DELETED.value,
                "object_type": "alert_trigger",
                "object_key": public_id,
                "project": project_key,
                "environment": env_key,
                "before": before,
                "reason": reason,
            },
        )


# -- firing -------------------------------------------------------------------------------


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def authenticate(svc: Services, public_id: str, secret: str) -> Row[Any]:
    """The trigger ``public_id`` if ``secret`` is its secret; :class:`Unauthenticated`
    otherwise (the same answer, after the same work, for an unknown trigger)."""
    row = None
    if _PUBLIC_ID.match(public_id):
        with svc.view() as conn:
            row = conn.execute(
                select(alert_triggers).where(alert_triggers.c.public_id == public_id)
            ).first()
    expected = _NO_SUCH_HASH if row is None else row.secret_hash
    if not hmac.compare_digest(_hash(secret), expected) or row is None:
        raise Unauthenticated("unknown alert trigger or wrong secret")
    return row


def fire(svc: Services, trigger: Row[Any], alerts: list[Alert]) -> dict[str, Any]:
    """Apply the trigger's reduction for each firing alert not seen before; ``resolved``
    alerts are acknowledged and change nothing."""
    outcomes = []
    for alert in alerts:
        if alert.status == "resolved":
            outcomes.append(_outcome(alert, "ignored", "a resolved alert never re-expands"))
            continue
        outcomes.append(_fire_once(svc, trigger, alert))
    return {"trigger": trigger.public_id, "alerts": outcomes}


def _outcome(alert: Alert, outcome: str, detail: str, **more: Any) -> dict[str, Any]:
    return {
        "alertname": alert.name,
        "fingerprint": alert.fingerprint,
        "status": alert.status,
        "outcome": outcome,
        "detail": detail,
    } | more


def _fire_once(svc: Services, trigger: Row[Any], alert: Alert) -> dict[str, Any]:
    """Claim the alert's episode, then apply; a failed apply gives the claim back."""
    try:
        with svc.change() as tx:
            tx.conn.execute(
                insert(alert_trigger_firings).values(
                    trigger_id=trigger.id,
                    episode=alert.episode,
                    fired_at=tx.now,
                    outcome={"state": "applying"},
                )
            )
    except IntegrityError:
        return _outcome(alert, "already_fired", "this alert already fired this trigger")
    try:
        result = _apply(svc, trigger, alert)
    except LockgateError as exc:
        _release(svc, trigger, alert)
        return _outcome(alert, "refused", exc.detail)
    except Exception:
        _release(svc, trigger, alert)
        raise
    with svc.change() as tx:
        tx.conn.execute(
            alert_trigger_firings.update()
            .where(
                alert_trigger_firings.c.trigger_id == trigger.id,
                alert_trigger_firings.c.episode == alert.episode,
            )
            .values(outcome=result)
        )
    return _outcome(alert, result["state"], result["detail"], version=result.get("version"))


def _release(svc: Services, trigger: Row[Any], alert: Alert) -> None:
    with svc.change() as tx:
        tx.conn.execute(
            delete(alert_trigger_firings).where(
                alert_trigger_firings.c.trigger_id == trigger.id,
                alert_trigger_firings.c.episode == alert.episode,
            )
        )


def _apply(svc: Services, trigger: Row[Any], alert: Alert) -> dict[str, Any]:
    with svc.view() as conn:
        project, env = _where(conn, trigger)
    # automatic: the policy lets it only reduce, and each change makes automatic.action
    actor = system_caller(f"alert-trigger:{trigger.public_id}", source="alert", automatic=True)
    reason = f"alert {alert.name or alert.fingerprint} fired trigger {trigger.name!r}"
    refs = {"alert_trigger": trigger.public_id, "alert": alert.evidence()}
    if trigger.action == "pause_rollout":
        return _pause(svc, trigger, actor, project.key, env.key, reason, refs)
    action, changes = AuditAction.FLAG_CONFIGURED, dict[str, Any]()
    if trigger.action == "kill":
        action, changes = AuditAction.FLAG_KILLED, {"killed": True}
    elif trigger.action == "fallback":
        changes = {"on": False}
    elif trigger.action == "exclude":
        current = flag_use.get_flag_config(svc, actor, project.key, trigger.flag, env.key)
        existing = list(current.get("exclusions") or [])
        ident = f"alert-{trigger.public_id}"
        if any(x.get("id") == ident for x in existing):
            return {"state": "unchanged", "detail": f"exclusion {ident} is already in force"}
        entry = {
            "id": ident,
            "clauses": audience_clauses(trigger.audience),
            "description": reason[:500],
        }
        action, changes = AuditAction.FLAG_EXCLUDED, {"exclusions": [*existing, entry]}
    result = flag_use.update_flag_config(
        svc, actor, project.key, trigger.flag, env.key, changes, None, reason, action, refs
    )
    if isinstance(result, Deferred):  # a reduction never waits; kept for safety
        return {"state": "proposed", "detail": "the policy turned it into a change request"}
    return {
        "state": "applied",
        "detail": f"{trigger.action} applied to {trigger.flag} in {env.key}",
        "version": result.get("version"),
    }


def _pause(
    svc: Services, trigger: Row[Any], actor: Caller, project: str, env: str, reason: str,
    refs: dict[str, Any],
) -> dict[str, Any]:  # fmt: skip
    plan = plan_use.get_plan(svc, actor, project, trigger.flag, env)
    if plan["status"] == plans.PAUSED:
        return {"state": "unchanged", "detail": f"the rollout of {trigger.flag} is already paused"}
    result = plan_use.pause_plan(svc, actor, project, trigger.flag, env, reason, refs)
    return {
        "state": "applied",
        "detail": f"the rollout of {trigger.flag} in {env} is paused at stage "
        f"{result.get('stage_name') or result.get('stage')}",
        "version": result.get("version"),
    }


def _where(conn: Any, trigger: Row[Any]) -> tuple[Row[Any], Row[Any]]:
    from lockgate.store.tables import environments, projects

    project = conn.execute(select(projects).where(projects.c.id == trigger.project_id)).first()
    env = conn.execute(
        select(environments).where(environments.c.id == trigger.environment_id)
    ).first()
    if project is None or env is None:
        raise NotFound("the trigger's environment no longer exists")
    return project, env
