"""The kill switch and targeted rollback: reversal of one behavior, immediate and audited.

Both are changes of the flag's configuration in one environment, planned and decided like
every other write (:func:`lockgate.control.configuration.flags.update_flag_config`):

* ``kill`` sets ``killed``: the behavior serves its off variation (the fallback) to
  everyone, reason ``KILLED``. The policy applies it at once, always. The rest of the
  configuration is kept as it was, so ``restore`` lifts the kill and serves exactly what
  was live before it — plus any edits made during the kill, which were classified as if
  the kill were not there (an expansion made then waited for its approvals) and which
  ``restore`` lists. Restoring is an expansion, governed by the posture.
* ``exclude`` adds an exclusion: one audience — a segment, accounts, regions or any
  attribute's values — gets the fallback before targets and rules are looked at (reason
  ``EXCLUDED``, rule id the exclusion's id); everyone else keeps what they had. Lifting an
  exclusion is an expansion, governed.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from lockgate.control import lookup
from lockgate.control.base import Caller, Services
from lockgate.control.configuration import flags as flag_use
from lockgate.control.governance.gate import Deferred
from lockgate.errors import FieldProblem, InvalidInput, NotFound
from lockgate.policy.access import Action
from lockgate.policy.changes import AuditAction
from lockgate.store.tables import environments, flag_config_versions

__all__ = [
    "audience_clauses",
    "exclude",
    "kill",
    "lift_exclusion",
    "list_exclusions",
    "restore",
]

MAX_EXCLUSIONS = 100
_ATTRIBUTE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$")
_ID = re.compile(r"[^a-z0-9_.-]+")


def _need_reason(reason: str, what: str) -> None:
    if not reason.strip():
        raise InvalidInput(
            f"{what} needs a reason", [FieldProblem("reason", f"say why ({what} is audited)")]
        )


def kill(
    svc: Services,
    caller: Caller,
    project_key: str,
    key: str,
    env_keys: list[str] | None,
    reason: str,
) -> dict[str, Any]:
    """Serve the fallback to everyone in ``env_keys`` (``None``: every environment)."""
    _need_reason(reason, "a kill")
    if env_keys is None:
        env_keys = _environment_keys(svc, caller, project_key)
    if not env_keys:
        raise InvalidInput(
            "name the environments", [FieldProblem("environments", "one environment at least")]
        )
    env_keys = list(dict.fromkeys(env_keys))
    for env_key in env_keys:
        # Every environment is checked (it exists, the caller may write there) before any
        # is killed: a kill in "all" environments never stops half way for lack of a role.
        flag_use.update_flag_config(
            svc, caller, project_key, key, env_key, {"killed": True}, None, reason,
            AuditAction.FLAG_KILLED, plan=True,
        )  # fmt: skip
    results = []
    for env_key in env_keys:
        before = flag_use.get_flag_config(svc, caller, project_key, key, env_key)
        # Written (and authorized) even when already killed: then nothing changes.
        after = flag_use.update_flag_config(
            svc,
            caller,
            project_key,
            key,
            env_key,
            {"killed": True},
            None,
            reason,
            AuditAction.FLAG_KILLED,
        )
        assert not isinstance(after, Deferred)  # the policy never defers a kill
        results.append(
            {
                "environment": env_key,
                "killed": True,
                "changed": after["version"] != before["version"],
                "version": after["version"],
                "serves": after.get("off_variation"),
            }
        )
    return {"flag": key, "reason": reason, "environments": results}


def restore(
    svc: Services,
    caller: Caller,
    project_key: str,
    key: str,
    env_key: str,
    reason: str,
    expected_version: int | None = None,
    *,
    plan: bool = False,
) -> dict[str, Any] | Deferred:
    """Lift the kill in one environment (an expansion: the posture decides)."""
    _need_reason(reason, "a restore")
    current = flag_use.get_flag_config(svc, caller, project_key, key, env_key)
    if not current.get("killed"):
        raise InvalidInput(
            f"flag {key!r} is not killed in {env_key!r}",
            [FieldProblem("environment", "nothing to restore here")],
        )
    edited = _edits_during_kill(svc, caller, project_key, key, env_key)
    result = flag_use.update_flag_config(
        svc,
        caller,
        project_key,
        key,
        env_key,
        {"killed": False},
        expected_version,
        reason,
        AuditAction.FLAG_RESTORED,
        {"edited_during_kill": edited} if edited else None,
        plan=plan,
    )
    if isinstance(result, Deferred):
        return result
    return {**result, "edited_during_kill": edited}


def _edits_during_kill(
    svc: Services, caller: Caller, project_key: str, key: str, env_key: str
) -> list[int]:
    """Versions written since the kill that is in force (the kill's own excluded)."""
    with svc.view() as conn:
        project = caller.project(conn, project_key, Action.READ)
        env = lookup.environment(conn, project, env_key)
        row = lookup.flag(conn, project, key)
        versions = conn.execute(
            select(flag_config_versions.c.version, flag_config_versions.c.config)
            .where(
                flag_config_versions.c.flag_id == row.id,
                flag_config_versions.c.environment_id == env.id,
            )
            .order_by(flag_config_versions.c.version.desc())
            .limit(1000)
        ).all()
    edited = []
    for index, version in enumerate(versions):
        older = versions[index + 1] if index + 1 < len(versions) else None
        if older is None or not (older.config or {}).get("killed"):
            break  # ``version`` is the kill itself
        edited.append(version.version)
    return sorted(edited)


def audience_clauses(audience: str) -> list[dict[str, Any]]:
    """``segment:S``, ``account:A``, ``region:R`` or ``attribute=value`` as clauses.

    Several values may be given with commas (``account:a1,a2``): any of them matches.
    """
    kind, sep, rest = audience.partition(":")
    if sep and kind in ("segment", "account", "region"):
        values = _values(rest, audience)
        if kind == "segment":
            return [{"op": "segment_match", "values": values}]
        return [{"attribute": kind, "op": "in", "values": values}]
    attribute, sep, rest = audience.partition("=")
    if sep and _ATTRIBUTE.match(attribute):
        return [{"attribute": attribute, "op": "in", "values": _values(rest, audience)}]
    raise InvalidInput(
        f"cannot read the audience {audience!r}",
        [
            FieldProblem(
                "audience", "segment:KEY, account:ID, region:NAME or attribute=value (commas: any)"
            )
        ],
    )


def _values(text: str, audience: str) -> list[str]:
    values = list(dict.fromkeys(v.strip() for v in text.split(",") if v.strip()))
    if not values:
        raise InvalidInput(
            f"the audience {audience!r} names no value", [FieldProblem("audience", "a value")]
        )
    return values


def exclusion_id(audience: str) -> str:
    """A readable id for an exclusion of ``audience`` (``segment-beta``, ``region-eu``)."""
    return _ID.sub("-", audience.lower().replace(":", "-").replace("=", "-")).strip("-")[:64]


def exclude(
    svc: Services,
    caller: Caller,
    project_key: str,
    key: str,
    env_key: str,
    audience: str,
    reason: str,
    exclusion: str | None = None,
) -> dict[str, Any]:
    """Serve the fallback to ``audience`` in one environment (a reduction: immediate)."""
    _need_reason(reason, "a rollback")
    clauses = audience_clauses(audience)
    ident = exclusion or exclusion_id(audience)
    current = flag_use.get_flag_config(svc, caller, project_key, key, env_key)
    existing = list(current.get("exclusions") or [])
    if any(x.get("id") == ident for x in existing):
        raise InvalidInput(
            f"flag {key!r} already has an exclusion {ident!r} in {env_key!r}",
            [FieldProblem("id", "choose another id, or lift that exclusion first")],
        )
    if len(existing) >= MAX_EXCLUSIONS:
        raise InvalidInput(
            "too many exclusions",
            [FieldProblem("audience", f"at most {MAX_EXCLUSIONS} per environment")],
        )
    entry = {"id": ident, "clauses": clauses, "description": reason[:500]}
    result = flag_use.update_flag_config(
        svc,
        caller,
        project_key,
        key,
        env_key,
        {"exclusions": [*existing, entry]},
        current["version"],
        reason,
        AuditAction.FLAG_EXCLUDED,
    )
    # Adding an audience that gets the fallback first is a reduction: it never waits.
    assert not isinstance(result, Deferred)
    return {**result, "exclusion": entry}


def lift_exclusion(
    svc: Services,
    caller: Caller,
    project_key: str,
    key: str,
    env_key: str,
    exclusion: str,
    reason: str,
    *,
    plan: bool = False,
) -> dict[str, Any] | Deferred:
    """Remove one exclusion (an expansion: the posture decides)."""
    _need_reason(reason, "lifting a rollback")
    current = flag_use.get_flag_config(svc, caller, project_key, key, env_key)
    existing = list(current.get("exclusions") or [])
    kept = [x for x in existing if x.get("id") != exclusion]
    if len(kept) == len(existing):
        raise NotFound(f"flag {key!r} has no exclusion {exclusion!r} in {env_key!r}")
    return flag_use.update_flag_config(
        svc,
        caller,
        project_key,
        key,
        env_key,
        {"exclusions": kept},
        current["version"],
        reason,
        AuditAction.FLAG_EXCLUSION_LIFTED,
        plan=plan,
    )


def list_exclusions(
    svc: Services, caller: Caller, project_key: str, key: str, env_key: str
) -> dict[str, Any]:
    current = flag_use.get_flag_config(svc, caller, project_key, key, env_key)
    return {
        "flag": key,
        "environment": env_key,
        "version": current["version"],
        "killed": bool(current.get("killed")),
        "incidents": list(current.get("incidents") or []),
        "exclusions": list(current.get("exclusions") or []),
    }


def _environment_keys(svc: Services, caller: Caller, project_key: str) -> list[str]:
    with svc.view() as conn:
        project = caller.project(conn, project_key, Action.READ)
        rows = conn.execute(
            select(environments.c.key)
            .where(environments.c.project_id == project.id)
            .order_by(environments.c.id)
        ).all()
    return [r.key for r in rows]
