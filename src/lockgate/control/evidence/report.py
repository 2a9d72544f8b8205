"""The evidence report of one behavior, and its release notes.

Everything in the report is read from what lockgate recorded — the audit log, configuration
versions, contract versions, change requests, runtime approvals, incidents and the
evaluation counts SDKs reported — for a time range; nothing is typed in. The report's JSON
form is what the API returns; :mod:`lockgate.reports.render` turns it into Markdown or one
self-contained HTML file.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, Row, func, select

from lockgate.control import lookup
from lockgate.control.base import Caller, Services
from lockgate.control.evidence import variations
from lockgate.control.evidence.audit_query import parse_time
from lockgate.errors import FieldProblem, InvalidInput
from lockgate.policy.access import Action
from lockgate.reports.frameworks import FRAMEWORK_NOTE, FRAMEWORKS, relevant_items
from lockgate.reports.release_notes import describe_serving, exposure_share, notes_for
from lockgate.store.audit import row_to_entry
from lockgate.store.tables import (
    audit_log,
    change_request_events,
    change_requests,
    contract_versions,
    decision_records,
    environments,
    evaluation_counts,
    flag_config_versions,
    guardrails,
    incidents,
    runtime_approval_events,
    runtime_approvals,
)
from lockgate.store.verify import VerifyError, verify_database

__all__ = [
    "REPORT_VERSION",
    "behavior_activity",
    "chain_verification",
    "evidence_report",
    "release_notes",
]

REPORT_VERSION = 1
_AUTOMATIC_ACTORS = ("system:guardrails", "alert-trigger:")
_REVERSALS = ("flag:killed", "flag:restored", "flag:excluded", "flag:exclusion_lifted")


def _range(svc: Services, since: str | None, until: str | None) -> tuple[str, str]:
    start = parse_time(since, "from") if since else "0000"
    end = parse_time(until, "to") if until else svc.now()
    if start >= end:
        raise InvalidInput("bad range", [FieldProblem("from", "must be before 'to'")])
    return start, end


def _flag_entries(
    conn: Connection, project: str, key: str, start: str, end: str
) -> list[dict[str, Any]]:
    """Audit entries about the behavior, and incident entries that covered it."""
    c = audit_log.c
    rows = conn.execute(
        select(audit_log)
        .where(c.project == project, c.ts >= start, c.ts < end)
        .where(((c.object_type == "flag") & (c.object_key == key)) | (c.object_type == "incident"))
        .order_by(c.seq)
    ).all()
    entries = [row_to_entry(r._mapping).to_dict() for r in rows]
    return [e for e in entries if e["object_type"] == "flag" or _covers(e, key)]


def _covers(entry: dict[str, Any], key: str) -> bool:
    """Whether an incident entry put ``key`` under incident (or took it out again)."""
    for state in (entry.get("after") or {}, entry.get("before") or {}):
        if key in (state.get("covered") or []) or key in (state.get("restored") or []):
            return True
    return False


def _timeline(
    conn: Connection, flag_id: int, envs: dict[int, Row[Any]], start: str, end: str
) -> list[dict[str, Any]]:
    """Per environment: the configuration in force at ``start`` and every version after."""
    v = flag_config_versions.c
    rows = conn.execute(
        select(flag_config_versions)
        .where(v.flag_id == flag_id, v.created_at < end)
        .order_by(v.environment_id, v.version)
    ).all()
    by_env: dict[int, list[Row[Any]]] = defaultdict(list)
    for row in rows:
        by_env[row.environment_id].append(row)
    result = []
    for env_id, env in sorted(envs.items(), key=lambda item: item[1].key):
        versions = by_env.get(env_id, [])
        before = [r for r in versions if r.created_at < start]
        shown = before[-1:] + [r for r in versions if r.created_at >= start]
        points = [
            {
                "version": r.version,
                "at": max(r.created_at, start) if r.created_at < start else r.created_at,
                "by": r.created_by,
                "reason": r.reason,
                "exposure": round(exposure_share(r.config), 6),
                "killed": bool(r.config.get("killed")),
                "serving": describe_serving(r.config),
                "audit_seq": r.audit_seq,
            }
            for r in shown
        ]
        result.append(
            {
                "environment": env.key,
                "protected": bool(env.protected),
                "timeline": points,
                "current": points[-1] if points else None,
            }
        )
    return result


def _change_requests(
    conn: Connection, project_id: int, key: str, start: str, end: str
) -> list[dict[str, Any]]:
    c = change_requests.c
    rows = conn.execute(
        select(change_requests)
        .where(
            c.project_id == project_id,
            c.object_type == "flag",
            c.object_key == key,
            c.created_at < end,
            (c.updated_at >= start),
        )
        .order_by(c.id)
    ).all()
    events = _grouped(
        conn.execute(
            select(change_request_events)
            .where(change_request_events.c.change_request_id.in_([r.id for r in rows]))
            .order_by(change_request_events.c.id)
        ).all(),
        "change_request_id",
    )
    result = []
    for row in rows:
        mine = events.get(row.id, [])
        current = [e for e in mine if e.revision == row.revision]
        result.append(
            {
                "id": row.id,
                "title": row.title,
                "environment": row.environment,
                "state": row.state,
                "author": row.author_name,
                "created_at": row.created_at,
                "decided_at": row.decided_at,
                "rule": (row.policy or {}).get("rule"),
                "reasons": list((row.policy or {}).get("reasons") or []),
                "approvals_required": row.approvals_required,
                "approved_by": [e.actor_name for e in current if e.kind == "approval"],
                "rejected_by": [e.actor_name for e in current if e.kind == "rejection"],
                "applied_seq": row.applied_audit_seq,
            }
        )
    return result


def _grouped(rows: Iterable[Row[Any]], column: str) -> dict[int, list[Row[Any]]]:
    grouped: dict[int, list[Row[Any]]] = defaultdict(list)
    for row in rows:
        grouped[getattr(row, column)].append(row)
    return grouped


def _runtime_approvals(
    conn: Connection, project_id: int, key: str, envs: dict[int, Row[Any]], start: str, end: str
) -> list[dict[str, Any]]:
    c = runtime_approvals.c
    rows = conn.execute(
        select(runtime_approvals)
        .where(
            c.project_id == project_id, c.behavior == key, c.created_at >= start, c.created_at < end
        )
        .order_by(c.id)
    ).all()
    events = _grouped(
        conn.execute(
            select(runtime_approval_events).where(
                runtime_approval_events.c.runtime_approval_id.in_([r.id for r in rows])
            )
        ).all(),
        "runtime_approval_id",
    )
    return [
        {
            "id": row.id,
            "environment": envs[row.environment_id].key if row.environment_id in envs else None,
            "action": row.action,
            "summary": row.summary,
            "state": row.state,
            "requester": row.requester_name,
            "created_at": row.created_at,
            "decided_at": row.decided_at,
            "decided_by": [f"{e.actor_name} ({e.kind})" for e in events.get(row.id, [])],
        }
        for row in rows
    ]


def _incidents(
    conn: Connection, project_id: int, key: str, envs: dict[int, Row[Any]], start: str, end: str
) -> list[dict[str, Any]]:
    c = incidents.c
    rows = conn.execute(
        select(incidents)
        .where(c.project_id == project_id, c.started_at < end)
        .where((c.ended_at.is_(None)) | (c.ended_at >= start))
        .order_by(c.id)
    ).all()
    return [
        {
            "id": row.id,
            "environment": envs[row.environment_id].key if row.environment_id in envs else None,
            "state": row.state,
            "reason": row.reason,
            "started_by": row.started_by,
            "started_at": row.started_at,
            "ended_by": row.ended_by,
            "ended_at": row.ended_at,
        }
        for row in rows
        if key in (row.covered or [])
    ]


def _decisions(
    conn: Connection, key: str, envs: dict[int, Row[Any]], start: str, end: str
) -> list[dict[str, Any]]:
    c = evaluation_counts.c
    rows = conn.execute(
        select(c.environment_id, c.variation, c.reason, func.sum(c.count).label("n"))
        .where(
            c.environment_id.in_(list(envs)),
            c.flag == key,
            c.window_start >= start,
            c.window_start < end,
        )
        .group_by(c.environment_id, c.variation, c.reason)
    ).all()
    return variations.summarize_counts(rows, envs)


def _decision_records(
    conn: Connection, key: str, envs: dict[int, Row[Any]], start: str, end: str
) -> list[dict[str, Any]]:
    """Full decision records (denied, approval required, kill and incident fallbacks, …)
    per environment and kind, from the decision log."""
    c = decision_records.c
    rows = conn.execute(
        select(c.environment_id, c.kind, func.count().label("n"))
        .where(
            c.environment_id.in_(list(envs)),
            c.flag == key,
            c.decided_at >= start,
            c.decided_at < end,
        )
        .group_by(c.environment_id, c.kind)
    ).all()
    found: dict[int, dict[str, Any]] = {}
    for row in rows:
        env = found.setdefault(
            row.environment_id,
            {"environment": envs[row.environment_id].key, "total": 0, "kinds": {}},
        )
        env["total"] += int(row.n)
        env["kinds"][row.kind] = int(row.n)
    return sorted(found.values(), key=lambda item: str(item["environment"]))


def _guardrails(conn: Connection, flag_id: int, envs: dict[int, Row[Any]]) -> list[dict[str, Any]]:
    """The behavior's guardrails as they stand, with their last evaluation."""
    rows = conn.execute(
        select(guardrails).where(guardrails.c.flag_id == flag_id).order_by(guardrails.c.key)
    ).all()
    out = []
    for row in rows:
        evaluation = dict(row.evaluation or {})
        definition = dict(row.definition)
        out.append(
            {
                "environment": envs[row.environment_id].key,
                "key": row.key,
                "metric": definition.get("metric"),
                "data_source": definition.get("data_source", "summaries"),
                "aggregation": definition.get("aggregation"),
                "comparison": definition.get("comparison"),
                "threshold": definition.get("threshold"),
                "action": definition.get("action"),
                "state": row.state,
                "evaluated_at": row.evaluated_at,
                "decision": evaluation.get("decision"),
                "estimate": evaluation.get("estimate"),
                "interval": evaluation.get("interval"),
                "samples": evaluation.get("samples") or {},
            }
        )
    return sorted(out, key=lambda g: (str(g["environment"]), str(g["key"])))


def _guardrail_events(
    conn: Connection, project: str, key: str, start: str, end: str
) -> list[dict[str, Any]]:
    """Breaches, recoveries and staged-rollout steps of the behavior, with their evidence."""
    c = audit_log.c
    rows = conn.execute(
        select(audit_log)
        .where(c.project == project, c.ts >= start, c.ts < end)
        .where(
            ((c.object_type == "guardrail") & c.object_key.startswith(f"{key}/", autoescape=True))
            | ((c.object_type == "rollout_plan") & (c.object_key == key))
        )
        .order_by(c.seq)
    ).all()
    out = []
    for row in rows:
        entry = row_to_entry(row._mapping).to_dict()
        evidence = entry.get("evidence") or {}
        out.append(
            {
                "seq": entry["seq"],
                "ts": entry["ts"],
                "action": entry["action"],
                "environment": entry["environment"],
                "object": entry["object_key"],
                "actor": entry["actor_name"],
                "reason": entry["reason"],
                "state": evidence.get("state"),
                "estimate": evidence.get("estimate"),
                "interval": evidence.get("interval"),
                "samples": evidence.get("samples") or {},
                "test": (evidence.get("test") or {}).get("name"),
                "evidence": evidence,
            }
        )
    return out


def _automatic(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Changes of the behavior made by automatic actors (guardrails, alert triggers)."""
    return [
        {
            "seq": e["seq"],
            "ts": e["ts"],
            "action": e["action"],
            "environment": e["environment"],
            "actor": e["actor_name"],
            "reason": e["reason"],
            "rule": ((e.get("evidence") or {}).get("policy") or {}).get("rule"),
            "samples": (e.get("evidence") or {}).get("samples") or {},
        }
        for e in entries
        if e["actor_type"] == "system"
        and str(e["actor_name"]).startswith(_AUTOMATIC_ACTORS)
        and e["object_type"] == "flag"
    ]


def _cleanup(svc: Services, conn: Connection, project_id: int, flag: Row[Any]) -> dict[str, Any]:
    """The behavior's lifecycle now (docs/cleanup.md): its stage, its cleanup rule and mark,
    and how many places the uploaded code still references it."""
    from lockgate.control.lifecycle import coderefs, facts
    from lockgate.lifecycle import derive

    now = svc.clock()
    (gathered,) = facts.gather(conn, project_id, [flag], now, stale_days=svc.stale_days)
    derived = derive(gathered.facts, now)
    rule = gathered.facts.rule
    refs = coderefs.references_by_key(conn, project_id, [flag.key]).get(flag.key, [])
    return {
        "stage": derived.stage.value,
        "since": None if derived.since is None else derived.since.isoformat(),
        "cleanup_rule": None if rule is None else rule.summary(),
        "cleanup_due_evidence": gathered.cleanup_evidence,
        "permanent_reason": gathered.facts.permanent_reason,
        "code_references": len(refs),
    }


def _contracts(conn: Connection, flag_id: int, end: str) -> list[dict[str, Any]]:
    c = contract_versions.c
    rows = conn.execute(
        select(c.version, c.hash, c.filename, c.created_at, c.created_by, c.audit_seq)
        .where(c.flag_id == flag_id, c.created_at < end)
        .order_by(c.version)
    ).all()
    return [dict(r._mapping) for r in rows]


def _controls_in_use(report: dict[str, Any]) -> set[str]:
    used = {"audit_chain"}
    if report["contract"]["versions"]:
        used.add("contract")
    if report["change_requests"]:
        used.add("approvals")
    if report["behavior"]["kind"] == "mode":
        used.add("authority_modes")
    if report["runtime_approvals"]:
        used.add("runtime_approvals")
    if report["reversals"]:
        used.add("kill_switch")
    if report["incidents"]:
        used.add("incident_mode")
    if report["decisions"]:
        used.add("decision_statistics")
    if report["guardrails"] or report["guardrail_events"] or report["automatic_actions"]:
        used.add("guardrails")
    if any(e["action"].startswith("rollout_plan:") for e in report["guardrail_events"]):
        used.add("staged_rollout")
    if report["decision_records"]:
        used.add("decision_log")
    return used


def evidence_report(
    svc: Services, caller: Caller, project_key: str, key: str, since: str | None, until: str | None
) -> dict[str, Any]:
    """The report for ``key`` over [``since``, ``until``) (default: all of its history)."""
    start, end = _range(svc, since, until)
    with svc.view() as conn:
        project = caller.project(conn, project_key, Action.READ)
        flag = lookup.flag(conn, project, key)
        envs = {
            r.id: r
            for r in conn.execute(
                select(environments).where(environments.c.project_id == project.id)
            ).all()
        }
        entries = _flag_entries(conn, project.key, key, start, end)
        contracts = _contracts(conn, flag.id, end)
        report: dict[str, Any] = {
            "report": {
                "version": REPORT_VERSION,
                "generated_at": svc.now(),
                "from": start if since else flag.created_at,
                "to": end,
            },
            "behavior": {
                "project": project.key,
                "key": flag.key,
                "name": flag.name,
                "owner": flag.owner,
                "risk_tier": flag.risk_tier,
                "kind": flag.kind,
                "behavior_kind": flag.behavior_kind,
                "lifecycle": flag.lifecycle,
                "archived": bool(flag.archived),
                "created_at": flag.created_at,
                "cleanup": _cleanup(svc, conn, project.id, flag),
            },
            "contract": {
                "current": contracts[-1] if contracts else None,
                "versions": [c for c in contracts if c["created_at"] >= start],
            },
            "environments": _timeline(conn, flag.id, envs, start, end),
            "change_requests": _change_requests(conn, project.id, key, start, end),
            "runtime_approvals": _runtime_approvals(conn, project.id, key, envs, start, end),
            "reversals": [
                {
                    "seq": e["seq"],
                    "ts": e["ts"],
                    "action": e["action"],
                    "environment": e["environment"],
                    "actor": e["actor_name"],
                    "reason": e["reason"],
                }
                for e in entries
                if e["action"] in _REVERSALS
            ],
            "incidents": _incidents(conn, project.id, key, envs, start, end),
            "decisions": _decisions(conn, key, envs, start, end),
            "decision_records": _decision_records(conn, key, envs, start, end),
            "guardrails": _guardrails(conn, flag.id, envs),
            "guardrail_events": _guardrail_events(conn, project.key, key, start, end),
            "automatic_actions": _automatic(entries),
            "release_notes": notes_for(entries),
        }
    report["audit"] = {
        "entries": len(entries),
        "first_seq": entries[0]["seq"] if entries else None,
        "last_seq": entries[-1]["seq"] if entries else None,
        "actions": _count_actions(entries),
        "verification": _verification(svc),
    }
    report["frameworks"] = {
        "note": FRAMEWORK_NOTE,
        "frameworks": FRAMEWORKS,
        "items": relevant_items(_controls_in_use(report)),
    }
    return report


def _verification(svc: Services) -> dict[str, Any]:
    """The whole chain, verified now: the range's entries are sound only if every entry up
    to the head links and every signed checkpoint matches."""
    try:
        verified = verify_database(
            svc.database,
            public_key=None if svc.signer is None else svc.signer.public_key,
            checkpoint_every=svc.checkpoint_every,
        )
    except VerifyError as exc:
        return {"ok": False, "problems": [{"problem": str(exc)}]}
    return verified.to_dict()


def _count_actions(entries: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for entry in entries:
        counts[entry["action"]] = counts.get(entry["action"], 0) + 1
    return dict(sorted(counts.items()))


def release_notes(
    svc: Services, caller: Caller, project_key: str, key: str, since: str | None, until: str | None
) -> dict[str, Any]:
    """The behavior's release notes over [``since``, ``until``), oldest first."""
    start, end = _range(svc, since, until)
    with svc.view() as conn:
        project = caller.project(conn, project_key, Action.READ)
        lookup.flag(conn, project, key)
        entries = _flag_entries(conn, project.key, key, start, end)
    return {"items": notes_for(entries)}


def behavior_activity(svc: Services, caller: Caller, project_key: str, key: str) -> dict[str, Any]:
    """What a behavior's page shows, from the report's own readers: the exposure timeline
    per environment, decision statistics, guardrails with their intervals and the current
    contract (all history;
    no chain verification, which reads the whole log: :func:`chain_verification`)."""
    start, end = _range(svc, None, None)
    with svc.view() as conn:
        project = caller.project(conn, project_key, Action.READ)
        flag = lookup.flag(conn, project, key)
        envs = {
            r.id: r
            for r in conn.execute(
                select(environments).where(environments.c.project_id == project.id)
            ).all()
        }
        contracts = _contracts(conn, flag.id, end)
        return {
            "environments": _timeline(conn, flag.id, envs, start, end),
            "decisions": variations.decision_totals(conn, key, envs),
            "guardrails": _guardrails(conn, flag.id, envs),
            "contract": contracts[-1] if contracts else None,
        }


def chain_verification(svc: Services) -> dict[str, Any]:
    """The audit chain verified now, end to end: ``{"ok": ...}`` and what was checked."""
    return _verification(svc)
