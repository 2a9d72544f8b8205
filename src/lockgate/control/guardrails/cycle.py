"""The guardrail cycle: evaluate every guardrail, act on breaches, advance healthy plans.

One run (:func:`run_cycle`, a background job) reads the summaries of every guardrail's
window — one query per environment, however many guardrails — evaluates each with the
pure functions of :mod:`lockgate.guardrails`, stores the states, then acts as the
``system:guardrails`` actor through the same use-cases as a person:

* a guardrail that becomes breached records ``guardrail:breached`` with its evidence and
  applies its action (pause, hold for approval, reduce, fallback, kill, exclude the cohort,
  notify); every resulting change carries the same evidence in its audit entry;
* a per-cohort cap excludes each cohort value over it until the window resets, then lifts
  that exclusion (ADR 0010);
* a plan advances to its next stage only when :func:`lockgate.guardrails.plans.next_step`
  says so, through the governed path, where the policy checks that the change is exactly
  the approved plan's next stage.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, Select, Table, and_, bindparam, delete, func, insert, select, update

from lockgate.control.base import Caller, Services, iso, system_caller
from lockgate.control.configuration import flags as flag_use
from lockgate.control.evidence import webhook_outbox
from lockgate.control.governance import gate
from lockgate.control.governance.gate import Deferred
from lockgate.control.guardrails import definitions
from lockgate.control.signals.prometheus import PrometheusError, PrometheusSource
from lockgate.decisionlog import GUARDRAIL_EXCLUSION_PREFIX
from lockgate.errors import Conflict, LockgateError, NotFound
from lockgate.events.catalog import EventType
from lockgate.guardrails import arms, evaluate, model, plans, stats
from lockgate.policy.changes import AuditAction, ObjectType
from lockgate.store.tables import (
    environments,
    flag_configs,
    flags,
    guardrail_exclusions,
    guardrail_results,
    guardrails,
    incidents,
    metric_summaries,
    projects,
    rollout_plans,
)

__all__ = ["ACTOR", "CycleResult", "run_cycle"]

ACTOR = "system:guardrails"
EXPOSURE = "$exposure"
log = logging.getLogger("lockgate.guardrails")
_ID = re.compile(r"[^a-z0-9_.-]+")
RESULT_SLOT = 900
"""Seconds per slot of the guardrail history: the last evaluation in each is kept."""
RESULT_RETENTION = 35 * 86400
"""How long the history keeps a slot (the dashboard charts 30 days at most)."""


@dataclass
class CycleResult:
    evaluated: int = 0
    breached: int = 0
    actions: int = 0
    advanced: int = 0
    lifted: int = 0
    states: dict[str, int] = field(default_factory=dict)

    @property
    def acted(self) -> int:
        return self.actions + self.advanced + self.lifted


@dataclass(frozen=True)
class _Guarded:
    row: Row[Any]
    spec: model.GuardrailSpec
    start: int
    end: int


def _epoch(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def _caller() -> Caller:
    return system_caller(ACTOR, source="system", automatic=True)


def _window(spec: model.GuardrailSpec, now: float) -> tuple[int, int]:
    """Caps (sums and counts) count over windows aligned to the epoch (a day from 00:00
    UTC) and reset; rates and means look at the last ``window`` seconds."""
    if spec.statistical:
        return int(now) - spec.window, int(now) + 1
    start = int(now) // spec.window * spec.window
    return start, start + spec.window


def _with_behavior(table: Table) -> Select[Any]:
    """Rows of ``table`` (guardrails or rollout plans: both keyed by project, behavior and
    environment) with their behavior's key, risk, tags, owner, environment and project keys
    and the live configuration; archived behaviors left out."""
    return (
        select(
            table,
            flags.c.key.label("flag_key"),
            flags.c.risk_tier,
            flags.c.tags,
            flags.c.owner,
            environments.c.key.label("env_key"),
            projects.c.key.label("project_key"),
            flag_configs.c.config,
        )
        .join(flags, flags.c.id == table.c.flag_id)
        .join(environments, environments.c.id == table.c.environment_id)
        .join(projects, projects.c.id == table.c.project_id)
        .join(
            flag_configs,
            and_(
                flag_configs.c.flag_id == table.c.flag_id,
                flag_configs.c.environment_id == table.c.environment_id,
            ),
        )
        .where(flags.c.archived.is_(False))
    )


def _load(conn: Any) -> tuple[list[Row[Any]], dict[tuple[int, int], Row[Any]]]:
    guards = conn.execute(_with_behavior(guardrails).order_by(guardrails.c.id)).all()
    plan_rows = conn.execute(select(rollout_plans)).all()
    return guards, {(p.flag_id, p.environment_id): p for p in plan_rows}


def _summaries(
    conn: Any, environment_id: int, start: int, end: int, wanted: set[tuple[str, str]]
) -> dict[tuple[str, str], list[Row[Any]]]:
    """Totals per (flag, metric) → variation and cohort over [start, end), summed by the
    database, for the metrics wanted and the exposure rows of their flags."""
    c = metric_summaries.c
    flags_wanted = sorted({f for f, _ in wanted})
    metrics_wanted = sorted({m for _, m in wanted} | {EXPOSURE})
    rows = conn.execute(
        select(
            c.flag,
            c.metric,
            c.variation,
            c.cohort,
            func.sum(c.count).label("n"),
            func.sum(c.sum).label("total"),
            func.sum(c.sum_sq).label("total_sq"),
            func.sum(c.exposures).label("exposures"),
        )
        .where(
            c.environment_id == environment_id,
            c.bucket >= start,
            c.bucket < end,
            c.flag.in_(flags_wanted),
            c.metric.in_(metrics_wanted),
        )
        .group_by(c.flag, c.metric, c.variation, c.cohort)
    ).all()
    found: dict[tuple[str, str], list[Row[Any]]] = defaultdict(list)
    for r in rows:
        found[(r.flag, r.metric)].append(r)
    return found


def _window_summaries(rows: list[Row[Any]], exposures: list[Row[Any]]) -> list[evaluate.Summary]:
    """The metric's totals per variation and cohort, with exposures from the
    ``$exposure`` rows where there are any (else those the metric rows carry)."""
    totals: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        t = totals.setdefault((r.variation, r.cohort), [0.0, 0.0, 0.0, 0.0])
        t[0] += r.n or 0
        t[1] += r.total or 0.0
        t[2] += r.total_sq or 0.0
        t[3] += r.exposures or 0
    seen: dict[tuple[str, str], int] = {}
    for r in exposures:
        seen[(r.variation, r.cohort)] = seen.get((r.variation, r.cohort), 0) + int(r.exposures or 0)
    for k in seen:  # a variation with exposures and no metric row yet
        totals.setdefault(k, [0.0, 0.0, 0.0, 0.0])
    found = []
    for (variation, cohort), t in sorted(totals.items()):
        exposed = seen.get((variation, cohort), int(t[3]))
        found.append(evaluate.Summary(variation, cohort, int(t[0]), t[1], t[2], exposed))
    return found


def _arms(
    spec: model.GuardrailSpec, config: dict[str, Any], plan: tuple[model.PlanSpec, int] | None,
    summaries: list[evaluate.Summary],
) -> tuple[list[str], str]:  # fmt: skip
    stable = spec.stable or (plan[0].stable if plan else None)
    stable = stable or str(config.get("off_variation") or "off")
    if spec.variation:
        return [spec.variation], stable
    if plan is not None:
        return [plan[0].generated(plan[1])], stable
    return sorted({s.variation for s in summaries} - {stable}), stable


def _plan_spec(row: Row[Any] | None, flag_key: str, env_key: str) -> model.PlanSpec | None:
    if row is None:
        return None
    return model.read_plan(dict(row.definition), flag=flag_key, environment=env_key)


def run_cycle(svc: Services) -> CycleResult:
    """One cycle over every guardrail and plan (see the module's docstring)."""
    result = CycleResult()
    now = svc.clock().timestamp()
    with svc.view() as conn:
        guards, plan_rows = _load(conn)
        by_env: dict[int, list[_Guarded]] = defaultdict(list)
        for row in guards:
            spec = model.read_guardrail(
                dict(row.definition) | {"key": row.key},
                flag=row.flag_key, environment=row.env_key,
            )  # fmt: skip
            start, end = _window(spec, now)
            by_env[row.environment_id].append(_Guarded(row, spec, start, end))
        states: dict[int, tuple[_Guarded, evaluate.GuardrailState]] = {}
        per_arm: dict[int, dict[str, dict[str, Any]]] = {}
        queried: list[_Guarded] = []
        for env_id, items in by_env.items():
            windows: dict[tuple[int, int], list[_Guarded]] = defaultdict(list)
            for g in items:  # one query per environment and distinct window
                if g.spec.prometheus:
                    queried.append(g)
                    continue
                windows[(g.start, g.end)].append(g)
            for (start, end), same in windows.items():
                wanted = {(g.spec.flag, g.spec.metric) for g in same}
                data = _summaries(conn, env_id, start, end, wanted)
                for g in same:
                    state, per_arm[g.row.id] = _judge(
                        g, data, plan_rows.get((g.row.flag_id, env_id))
                    )
                    states[g.row.id] = (g, state)
    if queried:  # read outside the database connection: Prometheus may be slow
        states.update(_query_prometheus(svc, queried, plan_rows, per_arm))
    result.evaluated = len(states)
    _store_states(svc, states, per_arm, now)
    for g, state in states.values():
        result.states[state.state] = result.states.get(state.state, 0) + 1
        try:
            result.actions += _act(svc, g, state, plan_rows)
        except LockgateError as exc:
            log.warning("guardrail %s could not act: %s", g.row.key, exc.detail)
        if state.breached:
            result.breached += 1
    result.lifted += _lift_expired(svc, now)
    result.advanced += _step_plans(svc, now, states)
    return result


def _judge(
    g: _Guarded, data: dict[tuple[str, str], list[Row[Any]]], plan_row: Row[Any] | None
) -> tuple[evaluate.GuardrailState, dict[str, dict[str, Any]]]:
    """One guardrail's state from its window's summaries, and its metric per variation."""
    plan_spec = _plan_spec(plan_row, g.spec.flag, g.spec.environment)
    summaries = _window_summaries(
        data.get((g.spec.flag, g.spec.metric), []),
        data.get((g.spec.flag, EXPOSURE), []),
    )
    current = None
    if plan_spec is not None and plan_row is not None:
        current = (plan_spec, int(plan_row.stage))
    generated, stable = _arms(g.spec, dict(g.row.config or {}), current, summaries)
    state = evaluate.evaluate(g.spec, summaries, generated=generated, stable=stable)
    return state, arms.arm_values(g.spec, summaries, generated=generated, stable=stable)


def _query_prometheus(
    svc: Services,
    queried: list[_Guarded],
    plan_rows: dict[tuple[int, int], Row[Any]],
    per_arm: dict[int, dict[str, dict[str, Any]]],
) -> dict[int, tuple[_Guarded, evaluate.GuardrailState]]:
    """Each Prometheus-sourced guardrail from its query; a source that cannot be read is
    ``no_data`` with the reason, which neither acts nor lets a rollout advance."""
    found: dict[int, tuple[_Guarded, evaluate.GuardrailState]] = {}
    if not svc.prometheus_url:
        for g in queried:
            found[g.row.id] = (g, _unread(g, "no Prometheus server is configured (prometheus_url)"))
        return found
    with PrometheusSource(svc.prometheus_url, timeout=svc.prometheus_timeout) as source:
        for g in queried:
            spec = g.spec
            plan_row = plan_rows.get((g.row.flag_id, g.row.environment_id))
            plan_spec = _plan_spec(plan_row, spec.flag, spec.environment)
            current = None
            if plan_spec is not None and plan_row is not None:
                current = (plan_spec, int(plan_row.stage))
            generated, stable = _arms(spec, dict(g.row.config or {}), current, [])
            try:
                values = source.read(spec.query or "", spec.variation_label)
                samples = None
                if spec.sample_query is not None:
                    samples = source.read(spec.sample_query, spec.variation_label)
            except PrometheusError as exc:
                log.warning("guardrail %s: %s", g.row.key, exc)
                found[g.row.id] = (g, _unread(g, f"the Prometheus query failed: {exc}"))
                continue
            state = evaluate.evaluate_values(
                spec, values, samples, generated=generated, stable=stable
            )
            found[g.row.id] = (g, state)
            per_arm[g.row.id] = arms.prometheus_arms(state.test, generated, stable)
    return found


def _unread(g: _Guarded, why: str) -> evaluate.GuardrailState:
    test = {"name": "Prometheus query against a threshold", "query": g.spec.query}
    return evaluate.GuardrailState(evaluate.NO_DATA, why, threshold=g.spec.threshold, test=test)


def _store_states(
    svc: Services,
    states: dict[int, tuple[_Guarded, evaluate.GuardrailState]],
    per_arm: dict[int, dict[str, dict[str, Any]]],
    now: float,
) -> None:
    """Each guardrail's evaluation, and its slot of the history, in one transaction."""
    if not states:
        return
    stamp = svc.now()
    params = [
        {"guard_id": guard_id, "doc": state.document(), "stamp": stamp}
        for guard_id, (_g, state) in states.items()
    ]
    slot = int(now) // RESULT_SLOT * RESULT_SLOT
    results = [
        _result(guard_id, g, state, per_arm.get(guard_id), slot, stamp)
        for guard_id, (g, state) in states.items()
    ]
    with svc.database.write() as conn:  # one statement executed for every guardrail
        conn.execute(
            update(guardrails)
            .where(guardrails.c.id == bindparam("guard_id"))
            .values(evaluation=bindparam("doc"), evaluated_at=bindparam("stamp")),
            params,
        )
        conn.execute(  # this slot's earlier evaluation, and slots past the retention
            delete(guardrail_results).where(
                guardrail_results.c.guardrail_id == bindparam("g_id"),
                (guardrail_results.c.slot == bindparam("g_slot"))
                | (guardrail_results.c.slot < bindparam("g_oldest")),
            ),
            [{"g_id": r["guardrail_id"], "g_slot": slot, "g_oldest": slot - RESULT_RETENTION}
             for r in results],
        )  # fmt: skip
        conn.execute(insert(guardrail_results), results)


def _result(
    guard_id: int,
    g: _Guarded,
    state: evaluate.GuardrailState,
    found: dict[str, dict[str, Any]] | None,
    slot: int,
    stamp: str,
) -> dict[str, Any]:
    """The history row of one evaluation (no arms: a Prometheus query that was not read)."""
    return {
        "guardrail_id": guard_id,
        "slot": slot,
        "evaluated_at": stamp,
        "state": state.state,
        "estimate": state.estimate,
        "low": state.low,
        "high": state.high,
        "threshold": g.spec.threshold,
        "boundary": arms.boundary(g.spec),
        "scale": arms.limit_scale(g.spec),
        "arms": found if found is not None else {},
    }


def _evidence(g: _Guarded, state: evaluate.GuardrailState) -> dict[str, Any]:
    return {
        "guardrail": {
            "key": g.spec.key,
            "metric": g.spec.metric,
            "aggregation": g.spec.aggregation,
            "comparison": g.spec.comparison,
            "direction": g.spec.direction,
            "action": g.spec.action,
            "window": {
                "seconds": g.spec.window,
                "start": iso(_utc(g.start)),
                "end": iso(_utc(g.end)),
            },
        },
        **state.document(),
    }


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _set_state(svc: Services, g: _Guarded, state: str, breached_at: str | None) -> None:
    with svc.database.write() as conn:
        conn.execute(
            update(guardrails)
            .where(guardrails.c.id == g.row.id)
            .values(state=state, breached_at=breached_at)
        )


_BREACH_FIELDS = ("state", "decision", "estimate", "interval", "samples", "threshold", "test")


def _record(svc: Services, g: _Guarded, action: AuditAction, evidence: dict[str, Any]) -> None:
    with svc.change() as tx:
        tx.record(
            _caller(),
            {
                "action": action.value,
                "object_type": ObjectType.GUARDRAIL.value,
                "object_key": f"{g.spec.flag}/{g.spec.key}",
                "project": g.row.project_key,
                "environment": g.spec.environment,
                "before": {"state": g.row.state},
                "after": {"state": evidence.get("state")},
                "reason": evidence.get("decision", ""),
                "risk_tier": g.row.risk_tier,
                "evidence": evidence,
                "refs": {},
            },
        )
        if action is AuditAction.GUARDRAIL_BREACHED:
            webhook_outbox.emit(
                tx,
                EventType.GUARDRAIL_BREACHED,
                g.row.project_key,
                {
                    "behavior": g.spec.flag,
                    "guardrail": evidence["guardrail"],
                    **{k: evidence.get(k) for k in _BREACH_FIELDS},
                },
                environment=g.spec.environment,
            )


def _act(
    svc: Services,
    g: _Guarded,
    state: evaluate.GuardrailState,
    plan_rows: dict[tuple[int, int], Row[Any]],
) -> int:
    """Act on a breach once (per cohort value for cohort caps); record a recovery."""
    was = g.row.state
    if g.spec.per is not None:
        if state.state != was:
            _set_state(svc, g, state.state, svc.now() if state.breached else g.row.breached_at)
        return _act_on_cohorts(svc, g, state) if state.breached else 0
    if state.state == was:
        return 0
    if state.state in (evaluate.INSUFFICIENT, evaluate.NO_DATA) and was == evaluate.BREACHED:
        return 0  # small samples never clear a guardrail: it stays breached
    if not state.breached:
        _set_state(svc, g, state.state, g.row.breached_at)
        if was == evaluate.BREACHED:
            _record(svc, g, AuditAction.GUARDRAIL_RECOVERED, _evidence(g, state))
        return 0
    _set_state(svc, g, evaluate.BREACHED, svc.now())
    evidence = _evidence(g, state)
    _record(svc, g, AuditAction.GUARDRAIL_BREACHED, evidence)
    plan_row = plan_rows.get((g.row.flag_id, g.row.environment_id))
    return _apply_action(svc, g, plan_row, evidence)


def _apply_action(
    svc: Services, g: _Guarded, plan_row: Row[Any] | None, evidence: dict[str, Any]
) -> int:
    caller = _caller()
    project, flag_key, env_key = g.row.project_key, g.spec.flag, g.spec.environment
    reason = f"guardrail {g.spec.key!r} breached: {g.spec.action}"
    action = g.spec.action
    done = 1
    if action == "kill":
        flag_use.update_flag_config(
            svc, caller, project, flag_key, env_key, {"killed": True}, None, reason,
            AuditAction.FLAG_KILLED, refs={"guardrail": g.spec.key}, evidence=evidence,
        )  # fmt: skip
    elif action in ("fallback", "reduce") and plan_row is not None:
        spec = _plan_spec(plan_row, flag_key, env_key)
        assert spec is not None
        version, config = definitions.current_config_by_ids(svc, plan_row)
        stable = spec.stable or str(config.get("off_variation") or "off")
        target = plan_row.stage - 1 if action == "reduce" else -1
        stage = spec.stages[target] if target >= 0 else None
        changes = plans.stage_config(config, stage, spec.variation, stable)
        flag_use.update_flag_config(
            svc, caller, project, flag_key, env_key, changes, version, reason,
            refs={"guardrail": g.spec.key, "rollout_plan": plan_row.id, "stage": target},
            evidence=evidence,
        )  # fmt: skip
        definitions.set_stage(svc, caller, plan_row, target, evidence)
    elif action == "fallback":
        flag_use.update_flag_config(
            svc, caller, project, flag_key, env_key, {"on": False}, None, reason,
            refs={"guardrail": g.spec.key}, evidence=evidence,
        )  # fmt: skip
    elif action == "deny_tool":
        return _deny_tool(svc, g, evidence, reason)
    elif action == "notify" or plan_row is None:
        done = 0
    if plan_row is not None and action != "notify":
        hold = action == "require_approval"
        definitions.hold_plan(svc, caller, plan_row, evidence, require_approval=hold)
        done = 1
    return done


def _deny_tool(svc: Services, g: _Guarded, evidence: dict[str, Any], reason: str) -> int:
    """Deny the guardrail's tool to everyone in the project (a reduction, at once). A tool
    no longer registered, or already denied by this guardrail, is left as it is."""
    from lockgate.control.agents import tools

    assert g.spec.tool is not None
    try:
        tools.deny_tool(
            svc, _caller(), g.row.project_key, g.spec.tool,
            denial_id=_exclusion_id(g.spec.key, "tool"),
            description=f"guardrail {g.spec.key!r} on {g.spec.flag!r} in {g.spec.environment!r}",
            reason=reason, evidence=evidence, refs={"guardrail": g.spec.key},
        )  # fmt: skip
    except (NotFound, Conflict) as exc:
        log.warning("guardrail %s: tool %s not denied: %s", g.spec.key, g.spec.tool, exc)
        return 0
    return 1


def _exclusion_id(key: str, cohort: str) -> str:
    """The exclusion's id; its prefix makes SDK records of it ``guardrail_exclusion``."""
    return _ID.sub("-", f"{GUARDRAIL_EXCLUSION_PREFIX}{key}-{cohort}".lower()).strip("-")[:64]


def _act_on_cohorts(svc: Services, g: _Guarded, state: evaluate.GuardrailState) -> int:
    """Exclude each cohort value over its cap that is not excluded yet, until the window
    resets (a kill or a notification acts once per window instead)."""
    per = g.spec.per
    assert per is not None
    with svc.view() as conn:
        active = {
            r.cohort
            for r in conn.execute(
                select(guardrail_exclusions.c.cohort).where(
                    guardrail_exclusions.c.guardrail_id == g.row.id
                )
            ).all()
        }
    acted = 0
    caller = _caller()
    for cohort, value in state.cohorts:
        if cohort in active:
            continue
        evidence = _evidence(g, state) | {
            "cohort": {"attribute": per, "value": cohort, "total": value}
        }
        _record(svc, g, AuditAction.GUARDRAIL_BREACHED, evidence)
        ident = _exclusion_id(g.spec.key, cohort)
        if g.spec.action in ("fallback", "exclude"):
            current = flag_use.get_flag_config(
                svc, caller, g.row.project_key, g.spec.flag, g.spec.environment
            )
            existing = [x for x in current.get("exclusions") or [] if x.get("id") != ident]
            entry = {
                "id": ident,
                "clauses": [{"attribute": per, "op": "in", "values": [cohort]}],
                "description": f"guardrail {g.spec.key!r}: {per} {cohort!r} over its cap "
                f"until {iso(_utc(g.end))}",
            }
            flag_use.update_flag_config(
                svc, caller, g.row.project_key, g.spec.flag, g.spec.environment,
                {"exclusions": [*existing, entry]}, current["version"],
                f"guardrail {g.spec.key!r}: {per} {cohort!r} over its cap",
                AuditAction.FLAG_EXCLUDED, refs={"guardrail": g.spec.key}, evidence=evidence,
            )  # fmt: skip
        elif g.spec.action == "kill":
            flag_use.update_flag_config(
                svc, caller, g.row.project_key, g.spec.flag, g.spec.environment,
                {"killed": True}, None, f"guardrail {g.spec.key!r} breached: kill",
                AuditAction.FLAG_KILLED, refs={"guardrail": g.spec.key}, evidence=evidence,
            )  # fmt: skip
        with svc.database.write() as conn:
            conn.execute(
                insert(guardrail_exclusions).values(
                    guardrail_id=g.row.id, cohort=cohort, exclusion=ident,
                    expires_at=iso(_utc(g.end)), created_at=svc.now(),
                )
            )  # fmt: skip
        acted += 1
    return acted


def _lift_expired(svc: Services, now: float) -> int:
    """Lift the exclusions of cohort caps whose window has reset (ADR 0010)."""
    stamp = iso(_utc(now))
    with svc.view() as conn:
        due = conn.execute(
            select(
                guardrail_exclusions,
                guardrails.c.key.label("guard_key"),
                flags.c.key.label("flag_key"),
                environments.c.key.label("env_key"),
                projects.c.key.label("project_key"),
            )
            .join(guardrails, guardrails.c.id == guardrail_exclusions.c.guardrail_id)
            .join(flags, flags.c.id == guardrails.c.flag_id)
            .join(environments, environments.c.id == guardrails.c.environment_id)
            .join(projects, projects.c.id == guardrails.c.project_id)
            .where(guardrail_exclusions.c.expires_at <= stamp)
        ).all()
    caller = _caller()
    lifted = 0
    for row in due:
        try:
            current = flag_use.get_flag_config(
                svc, caller, row.project_key, row.flag_key, row.env_key
            )
            existing = list(current.get("exclusions") or [])
            if any(x.get("id") == row.exclusion for x in existing):
                flag_use.update_flag_config(
                    svc, caller, row.project_key, row.flag_key, row.env_key,
                    {"exclusions": [x for x in existing if x.get("id") != row.exclusion]},
                    current["version"],
                    f"guardrail {row.guard_key!r}: the window reset; {row.cohort!r} is within "
                    "its cap again",
                    AuditAction.FLAG_EXCLUSION_LIFTED,
                    refs={"guardrail": row.guard_key},
                    evidence={"expiry": {"expired_at": row.expires_at, "cohort": row.cohort,
                                         "rule": "time-boxed automatic exclusion (ADR 0010)"}},
                    expiring=(row.exclusion,),
                )  # fmt: skip
                lifted += 1
        except LockgateError as exc:
            log.warning("could not lift exclusion %s: %s", row.exclusion, exc.detail)
            continue
        with svc.database.write() as conn:
            conn.execute(delete(guardrail_exclusions).where(guardrail_exclusions.c.id == row.id))
    return lifted


def _exposures_since(
    conn: Any, rows: list[Row[Any]], starts: dict[int, int]
) -> dict[int, dict[str, int]]:
    """Per plan, the exposures of each variation since its stage started: one query per
    environment, summed here."""
    by_env: dict[int, list[Row[Any]]] = defaultdict(list)
    for row in rows:
        by_env[row.environment_id].append(row)
    found: dict[int, dict[str, int]] = {}
    for env_id, plans_here in by_env.items():
        keys = sorted({p.flag_key for p in plans_here})
        data = conn.execute(
            select(
                metric_summaries.c.flag,
                metric_summaries.c.variation,
                metric_summaries.c.bucket,
                metric_summaries.c.exposures,
            ).where(
                metric_summaries.c.environment_id == env_id,
                metric_summaries.c.metric == EXPOSURE,
                metric_summaries.c.cohort == "",
                metric_summaries.c.flag.in_(keys),
                metric_summaries.c.bucket >= min(starts[p.id] for p in plans_here),
            )
        ).all()
        by_flag: dict[str, list[Row[Any]]] = defaultdict(list)
        for r in data:
            by_flag[r.flag].append(r)
        for p in plans_here:
            seen: dict[str, int] = {}
            for r in by_flag.get(p.flag_key, []):
                if r.bucket >= starts[p.id]:
                    seen[r.variation] = seen.get(r.variation, 0) + r.exposures
            found[p.id] = seen
    return found


def _step_plans(
    svc: Services, now: float, states: dict[int, tuple[_Guarded, evaluate.GuardrailState]]
) -> int:
    by_target: dict[tuple[int, int], dict[str, evaluate.GuardrailState]] = defaultdict(dict)
    for g, state in states.values():
        by_target[(g.row.flag_id, g.row.environment_id)][g.spec.key] = state
    advanced = 0
    with svc.view() as conn:
        rows = conn.execute(_with_behavior(rollout_plans)).all()
        starts = {
            row.id: int(_epoch(row.stage_started_at)) // 60 * 60 for row in rows
        }  # from the minute the stage started in: its first minute may count a few
        # exposures of the stage before it (summaries are per minute)
        exposures = _exposures_since(conn, list(rows), starts)
        with_incidents = {
            r.environment_id
            for r in conn.execute(
                select(incidents.c.environment_id).where(incidents.c.state == "active")
            ).all()
        }
        inputs = []
        for row in rows:
            spec = _plan_spec(row, row.flag_key, row.env_key)
            assert spec is not None
            frozen = (
                gate.frozen_by(conn, [row.environment_id], [row])
                if row.environment_id in with_incidents
                else []
            )
            inputs.append((row, spec, exposures.get(row.id, {}), frozen))
    notes: dict[int, dict[str, Any]] = {}
    for row, spec, seen, frozen in inputs:
        try:
            advanced += _step_plan(svc, now, row, spec, seen, frozen, by_target, notes)
        except LockgateError as exc:
            log.warning("rollout plan %s could not advance: %s", row.id, exc.detail)
    definitions.note_steps(svc, notes)
    return advanced


def _step_plan(
    svc: Services,
    now: float,
    row: Row[Any],
    spec: model.PlanSpec,
    seen: dict[str, int],
    frozen: list[str],
    by_target: dict[tuple[int, int], dict[str, evaluate.GuardrailState]],
    notes: dict[int, dict[str, Any]],
) -> int:
    config = dict(row.config or {})
    stable = spec.stable or str(config.get("off_variation") or "off")
    if definitions.reconcile(svc, _caller(), row, spec, config, stable):
        return 0
    if row.status in (plans.PAUSED, plans.COMPLETED, plans.AWAITING_APPROVAL):
        return 0
    state = plans.PlanState(
        row.stage, row.status, _epoch(row.stage_started_at), bool(row.require_approval)
    )
    share = plans.expected_share(spec.stages[row.stage]) if row.stage >= 0 else None
    generated, control = seen.get(spec.generated(row.stage), 0), seen.get(stable, 0)
    srm = None if share is None else stats.srm_p_value((generated, control), share)
    guards = by_target.get((row.flag_id, row.environment_id), {})
    step = plans.next_step(
        spec, state, now=now, guardrails=guards, incidents=frozen,
        stage_exposures=generated, srm_p=srm,
    )  # fmt: skip
    checks = dict(step.checks) | {"reasons": list(step.reasons), "at": iso(_utc(now))}
    if not step.advance:
        notes[row.id] = checks
        return 0
    target = row.stage + 1
    changes = plans.stage_config(config, spec.stages[target], spec.variation, stable)
    evidence = {
        "rollout": checks,
        "guardrails": {k: s.document() for k, s in sorted(guards.items())},
    }
    rollout = flag_use.RolloutStep(
        plan=row.id, stage=target, approved=True,
        next_stage=not spec.stages[target].approval, config=changes,
    )  # fmt: skip
    result = flag_use.update_flag_config(
        svc, _caller(), row.project_key, row.flag_key, row.env_key, changes, None,
        f"rollout plan: stage {target} ({spec.stages[target].name}); every check passed",
        refs={"rollout_plan": row.id, "stage": target}, rollout=rollout, evidence=evidence,
    )  # fmt: skip
    if isinstance(result, Deferred):  # never for a system actor; be explicit all the same
        return 0
    definitions.set_stage(svc, _caller(), row, target, evidence, advance=True)
    return 1
