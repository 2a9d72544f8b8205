"""Read and act on a behavior's lifecycle: its stage and rule, archive, restore, and the
cleanup report of a project.

Archiving and restoring are definition changes (``archived``) through
:func:`lockgate.control.configuration.flags.update_flag`: archiving is a reduction and
applies at once, restoring is an expansion governed by the posture; the refusal while code
references remain or the behavior is still evaluated lives there, so no write path
skips it.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import select

from lockgate.control import lookup
from lockgate.control.base import Caller, Services
from lockgate.control.configuration import flags as flag_use
from lockgate.control.governance.gate import Deferred
from lockgate.control.lifecycle import coderefs, facts
from lockgate.lifecycle import DEFAULT_LIFETIME_DAYS, Stage, derive, find_stale
from lockgate.policy.access import Action
from lockgate.store.tables import flags

__all__ = ["archive", "cleanup_report", "lifecycle_of", "restore"]


def _document(
    svc: Services, g: facts.Gathered, now: Any, refs: list[dict[str, Any]]
) -> dict[str, Any]:
    f = g.facts
    lifetimes = svc.behavior_lifetimes or DEFAULT_LIFETIME_DAYS
    derived = derive(f, now)
    return {
        "behavior": f.key,
        "owner": f.owner,
        "lifecycle": f.lifecycle,
        "permanent_reason": f.permanent_reason if f.lifecycle == "permanent" else None,
        "behavior_kind": f.behavior_kind,
        **derived.document(),
        "cleanup_rule": None if f.rule is None else f.rule.document(),
        "cleanup_rule_problem": g.rule_problem,
        "cleanup_evidence": g.cleanup_evidence,
        "stale": [
            s.document() for s in find_stale(f, now, days=svc.stale_days, lifetimes=lifetimes)
        ],
        "code_references": refs,
    }


def lifecycle_of(svc: Services, caller: Caller, project_key: str, key: str) -> dict[str, Any]:
    """One behavior's stage, why, its cleanup rule and check, staleness and references."""
    now = svc.clock()
    with svc.view() as conn:
        project = caller.project(conn, project_key, Action.READ)
        row = lookup.flag(conn, project, key)
        (gathered,) = facts.gather(conn, project.id, [row], now, stale_days=svc.stale_days)
        refs = coderefs.references_by_key(conn, project.id, [row.key]).get(row.key, [])
    return _document(svc, gathered, now, refs)


def archive(
    svc: Services,
    caller: Caller,
    project_key: str,
    key: str,
    reason: str,
    *,
    force: bool = False,
    expected_version: int | None = None,
    plan: bool = False,
) -> dict[str, Any] | Deferred:
    """Archive a behavior: refused (409) while referenced or evaluated, unless ``force``."""
    return flag_use.update_flag(
        svc, caller, project_key, key, {"archived": True}, expected_version, reason,
        plan=plan, force=force,
    )  # fmt: skip


def restore(
    svc: Services,
    caller: Caller,
    project_key: str,
    key: str,
    reason: str,
    *,
    expected_version: int | None = None,
    plan: bool = False,
) -> dict[str, Any] | Deferred:
    """Bring an archived behavior back into the snapshots (governed like any expansion)."""
    return flag_use.update_flag(
        svc, caller, project_key, key, {"archived": False}, expected_version, reason, plan=plan
    )


def _entry(g: facts.Gathered, doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "behavior": g.row.key,
        "stage": doc["stage"],
        "since": doc["since"],
        "why": doc["why"],
        "code_references": len(doc["code_references"]),
    }


def cleanup_report(
    svc: Services, caller: Caller, project_key: str, owner: str | None = None
) -> dict[str, Any]:
    """What is cleanup due, stale, or referenced in code but archived or unknown — per owner."""
    now = svc.clock()
    with svc.view() as conn:
        project = caller.project(conn, project_key, Action.READ)
        rows = facts.project_flags(conn, project.id)
        gathered = facts.gather(conn, project.id, rows, now, stale_days=svc.stale_days)
        refs = coderefs.references_by_key(conn, project.id)
        owners = {
            r.key: r.owner for r in conn.execute(select(flags.c.key, flags.c.owner).where(
                flags.c.project_id == project.id))
        }  # fmt: skip
    by_owner: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(
        lambda: {"cleanup_due": [], "stale": [], "referenced_but_gone": []}
    )
    for g in gathered:
        doc = _document(svc, g, now, refs.get(g.row.key, []))
        section = by_owner[g.row.owner or ""]
        if doc["stage"] == Stage.CLEANUP_DUE.value:
            section["cleanup_due"].append(_entry(g, doc) | {"evidence": g.cleanup_evidence})
        if doc["stale"]:
            section["stale"].append(_entry(g, doc) | {"findings": doc["stale"]})
        if g.row.archived and doc["code_references"]:
            section["referenced_but_gone"].append(
                {"behavior": g.row.key, "status": "archived", "references": doc["code_references"]}
            )
    for key, places in sorted(refs.items()):
        if key not in owners:
            by_owner[""]["referenced_but_gone"].append(
                {"behavior": key, "status": "unknown", "references": places}
            )
    report = [
        {"owner": name, **sections}
        for name, sections in sorted(by_owner.items())
        if owner is None or name == owner
    ]
    report = [r for r in report if r["cleanup_due"] or r["stale"] or r["referenced_but_gone"]]
    return {"project": project_key, "generated_at": svc.now(), "owners": report}
