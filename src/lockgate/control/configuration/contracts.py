"""Runtime contracts: validate, plan, apply, explain and export a behavior's contract.

A contract is read into positioned nodes (:mod:`lockgate.control.contract_yaml`) and checked
by the pure :mod:`lockgate.contracts`. Applying it never writes around the policy: the
behavior is created or changed with :func:`flags.create_flag` / :func:`flags.update_flag`
and each environment with :func:`flags.update_flag_config`, so an expansion in a protected
environment becomes a change request exactly as a hand-made change would. The contract
itself is stored as a new version (source, hash) linked to the behavior, audited as
``contract:applied``; its rules (allowed modes, first audience, risk tier, default state)
are then checked by every later configuration write.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, func, insert, select, update

from lockgate.contracts import (
    check_config,
    desired_config,
    desired_definition,
    export_contract,
    loosening,
    served_variations,
)
from lockgate.control import lookup
from lockgate.control.base import Caller, Services, Transaction
from lockgate.control.configuration import flags
from lockgate.control.contract_yaml import Loaded, check_contract, explain_contract, load
from lockgate.control.governance import gate
from lockgate.control.governance.gate import Deferred
from lockgate.errors import FieldProblem, InvalidInput, PolicyRefused
from lockgate.policy import postures
from lockgate.policy.access import Action
from lockgate.policy.changes import AuditAction, Change, ObjectType
from lockgate.policy.classify import Direction
from lockgate.policy.postures import Verdict
from lockgate.store.tables import (
    change_requests,
    contract_versions,
    environments,
    projects,
    segments,
)
from lockgate.store.tables import flags as flags_table

__all__ = [
    "Loaded",
    "apply_contract",
    "apply_contract_change",
    "check_contract",
    "contract_history",
    "explain_contract",
    "export_behavior",
    "plan_contract",
]

_ROOT_FIELD = "ai_generated_software_control"


# --- reading the live state ---------------------------------------------------------------


def _key(loaded: Loaded) -> str:
    key = loaded.contract.key
    if key is None:
        line = loaded.tree.line
        raise InvalidInput(
            "the contract names no behavior key",
            [FieldProblem(f"{_ROOT_FIELD}.key", "required to plan or apply", line, 1)],
        )
    return key


def _check_references(conn: Any, project: Row[Any], loaded: Loaded) -> list[Row[Any]]:
    """The project's environments the contract names; refuse unknown ones and segments."""
    c = loaded.contract
    env_rows = {
        e.key: e
        for e in conn.execute(select(environments).where(environments.c.project_id == project.id))
    }
    segment_keys = set(
        conn.execute(select(segments.c.key).where(segments.c.project_id == project.id)).scalars()
    )
    problems = []
    for env, state in c.environments.items():
        if env not in env_rows:
            problems.append(
                FieldProblem(
                    f"{_ROOT_FIELD}.environments.{env}",
                    f"no environment {env!r} in project {project.key!r}",
                    state.line,
                    1,
                )
            )
    named = []
    if c.first_audience is not None and c.first_audience.segment is not None:
        line = c.lines.get("first_audience", c.first_audience.line)
        named.append(("first_audience.segment", c.first_audience.segment, line))
    for i, binding in enumerate(c.approvals):
        if binding.segment is not None:
            named.append((f"approval_required_when[{i}].segment", binding.segment, binding.line))
    for path, key, line in named:
        if key not in segment_keys:
            problems.append(
                FieldProblem(
                    f"{_ROOT_FIELD}.{path}",
                    f"names segment {key!r}, which project {project.key!r} does not have",
                    line,
                    1,
                )
            )
    if problems:
        raise InvalidInput("the contract names what the project does not have", problems)
    return [env_rows[e] for e in c.environments]


def _flag_row(conn: Any, project: Row[Any], key: str) -> Row[Any] | None:
    row: Row[Any] | None = conn.execute(
        select(flags_table).where(flags_table.c.project_id == project.id, flags_table.c.key == key)
    ).first()
    return row


def _latest_version(conn: Any, flag_id: int) -> Row[Any] | None:
    row: Row[Any] | None = conn.execute(
        select(contract_versions)
        .where(contract_versions.c.flag_id == flag_id)
        .order_by(contract_versions.c.version.desc())
        .limit(1)
    ).first()
    return row


def _pending_request(
    conn: Any,
    project_id: int,
    key: str,
    environment: str | None,
    after: dict[str, Any],
    action: AuditAction | None = None,
) -> int | None:
    """An open or approved change request already proposing exactly ``after``."""
    query = select(change_requests.c.id, change_requests.c.change).where(
        change_requests.c.project_id == project_id,
        change_requests.c.object_key == key,
        change_requests.c.state.in_(("open", "approved")),
    )
    if action is not None:
        query = query.where(change_requests.c.action == action.value)
    rows = conn.execute(query).all()
    for row in rows:
        change = row.change or {}
        proposed = {k: v for k, v in (change.get("after") or {}).items() if k != "version"}
        if change.get("environment") == environment and proposed == after:
            return int(row.id)
    return None


def _reason(loaded: Loaded, reason: str) -> str:
    if reason.strip():
        return reason
    return f"contract {loaded.filename or 'file'} ({loaded.digest[:12]})"


def _step(kind: str, target: str, outcome: str, **more: Any) -> dict[str, Any]:
    step = {"step": kind, "target": target, "outcome": outcome}
    step.update({k: v for k, v in more.items() if v is not None})
    return step


def _decision_step(kind: str, target: str, decision: dict[str, Any], **more: Any) -> dict[str, Any]:
    return _step(
        kind,
        target,
        decision["outcome"],
        rule=decision["rule"],
        approvals_required=decision["approvals_required"],
        reasons=decision["reasons"],
        direction=decision.get("direction"),
        **more,
    )


def _diff(before: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    return {k: {"before": before.get(k), "after": v} for k, v in changes.items()}


# --- plan ---------------------------------------------------------------------------------


def plan_contract(
    svc: Services,
    caller: Caller,
    project_key: str,
    source: str,
    filename: str = "",
    environment: str | None = None,
    reason: str = "",
) -> dict[str, Any]:
    """What applying would do, step by step, and what the policy decides for each."""
    loaded = load(source, filename)
    key = _key(loaded)
    c = loaded.contract
    why = _reason(loaded, reason)
    with svc.view() as conn:
        project = caller.project(conn, project_key, Action.READ)
        env_rows = _check_references(conn, project, loaded)
        row = _flag_row(conn, project, key)
        latest = None if row is None else _latest_version(conn, row.id)
        current = {} if row is None else flags.flag_view(conn, row)
        contract_verdict = (
            None if row is None else _judge_contract(conn, project, row, c.rules())[0]
        )
    if environment is not None:
        if environment not in c.environments:
            raise InvalidInput(
                f"the contract does not configure environment {environment!r}",
                [FieldProblem("environment", "not in the contract's environments")],
            )
        env_rows = [e for e in env_rows if e.key == environment]
    target = f"flag {key!r}"
    steps = []
    wanted = desired_definition(c)
    if row is None:
        steps.append(
            _step(
                "definition",
                target,
                "apply",
                rule="a new flag is off everywhere",
                changes=_diff({}, wanted),
            )
        )
    else:
        changes = {k: v for k, v in wanted.items() if current.get(k) != v}
        steps.append(_plan_definition(svc, caller, project_key, key, current, changes, why))
    same = latest is not None and latest.hash == loaded.digest
    version = (latest.version if latest else 0) + (0 if same else 1)
    if same or contract_verdict is None:
        steps.append(_step("contract", target, "unchanged" if same else "apply", version=version))
    else:
        steps.append(
            _decision_step(
                "contract", target, contract_verdict.document(), version=version, hash=loaded.digest
            )
        )
    for env in env_rows:
        steps.append(_plan_environment(svc, caller, project, env, row, current, loaded, why))
        if c.environments[env.key].state != "off":
            steps.extend(_plan_guarded(svc, caller, project_key, key, env.key, c, why, row))
    steps.extend(_apply_tools(svc, caller, project_key, c, why, plan=True))
    return {
        "project": project_key,
        "behavior": key,
        "hash": loaded.digest,
        "steps": steps,
        "changes": sum(1 for s in steps if s["outcome"] != "unchanged"),
    }


def _plan_guarded(
    svc: Services,
    caller: Caller,
    project_key: str,
    key: str,
    env_key: str,
    c: Any,
    why: str,
    row: Row[Any] | None,
) -> list[dict[str, Any]]:
    """What apply would do with the contract's guardrails and rollout stages there."""
    from lockgate.control.guardrails import definitions

    planned: list[tuple[str, str, Any]] = [
        ("guardrail", f"guardrail {name!r} of {key!r} in {env_key!r}", (name, body))
        for name, body in guardrail_bodies(c).items()
    ]
    body = plan_body(c)
    if body is not None:
        planned.append(("rollout_plan", f"rollout plan of {key!r} in {env_key!r}", body))
    steps = []
    for kind, target, what in planned:
        if row is None:  # a new behavior: created with it, as applying will
            steps.append(_step(kind, target, "apply", environment=env_key))
            continue
        try:
            if kind == "guardrail":
                answer = definitions.put_guardrail(
                    svc, caller, project_key, key, env_key, what[0], what[1],
                    reason=why, source="contract", plan=True,
                )  # fmt: skip
            else:
                answer = definitions.put_plan(
                    svc, caller, project_key, key, env_key, what,
                    reason=why, source="contract", plan=True,
                )  # fmt: skip
        except (PolicyRefused, InvalidInput) as exc:
            steps.append(_step(kind, target, "refuse", environment=env_key, rule=exc.detail))
            continue
        if isinstance(answer, Deferred):
            decision = answer.body["plan"]["decision"]
            steps.append(_decision_step(kind, target, decision, environment=env_key))
        else:
            steps.append(_step(kind, target, "unchanged", environment=env_key))
    return steps


def _plan_definition(
    svc: Services,
    caller: Caller,
    project_key: str,
    key: str,
    current: dict[str, Any],
    changes: dict[str, Any],
    reason: str,
) -> dict[str, Any]:
    target = f"flag {key!r}"
    if not changes:
        return _step("definition", target, "unchanged")
    try:
        answer = flags.update_flag(svc, caller, project_key, key, changes, None, reason, plan=True)
    except PolicyRefused as exc:
        return _step(
            "definition", target, "refuse", rule=exc.detail, changes=_diff(current, changes)
        )
    assert isinstance(answer, Deferred)
    return _decision_step(
        "definition", target, answer.body["plan"]["decision"], changes=_diff(current, changes)
    )


def _plan_environment(
    svc: Services,
    caller: Caller,
    project: Row[Any],
    env: Row[Any],
    row: Row[Any] | None,
    current: dict[str, Any],
    loaded: Loaded,
    reason: str,
) -> dict[str, Any]:
    c = loaded.contract
    key = _key(loaded)
    target = f"flag {key!r} in {env.key!r}"
    rules = c.rules()
    if row is None:
        variations = flags.default_variations("mode")
        config = flags.default_config("mode", variations)
    else:
        config = {
            k: v for k, v in current["environments"][env.key].items() if k in flags.CONFIG_FIELDS
        }
    changes = desired_config(c, c.environments[env.key], config)
    if not changes:
        return _step("environment", target, "unchanged", environment=env.key)
    diff = _diff(config, changes)
    after = {**config, **changes}
    broken = check_config(rules, config, after)
    if broken is not None:
        return _step(
            "environment",
            target,
            "refuse",
            environment=env.key,
            rule=f"refused by its contract: {broken}",
            changes=diff,
        )
    if row is None:
        # Not created yet: decided as the first change after creation will be.
        active = bool(after.get("on")) and bool(served_variations(after) - {"off", "fallback"})
        verdict = postures.decide(
            Direction.EXPANSION if active else Direction.NONE,
            reasons=("a new behavior starts serving",) if active else (),
            scopes=[(c.risk_level, gate.environment_class(env))],
            posture=gate.posture_of(project),
        )
        return _decision_step(
            "environment", target, verdict.document(), environment=env.key, changes=diff
        )
    try:
        answer = flags.update_flag_config(
            svc,
            caller,
            project.key,
            key,
            env.key,
            changes,
            None,
            reason,
            plan=True,
            contract_rules=rules,
        )
    except PolicyRefused as exc:
        return _step(
            "environment", target, "refuse", environment=env.key, rule=exc.detail, changes=diff
        )
    if not isinstance(answer, Deferred):
        return _step("environment", target, "unchanged", environment=env.key)
    return _decision_step(
        "environment", target, answer.body["plan"]["decision"], environment=env.key, changes=diff
    )


# --- apply --------------------------------------------------------------------------------


def apply_contract(
    svc: Services,
    caller: Caller,
    project_key: str,
    source: str,
    filename: str = "",
    reason: str = "",
) -> dict[str, Any]:
    """Apply a contract through the governed path (idempotent; see the module docstring)."""
    loaded = load(source, filename)
    key = _key(loaded)
    c = loaded.contract
    why = _reason(loaded, reason)
    with svc.view() as conn:
        project = caller.project(conn, project_key, Action.READ)
        env_rows = _check_references(conn, project, loaded)
        row = _flag_row(conn, project, key)
    steps = []
    target = f"flag {key!r}"
    wanted = desired_definition(c)
    if row is None:
        values = {"key": key, "kind": "mode", **wanted}
        if c.cleanup is not None:
            values["lifecycle"] = "temporary"
        flags.create_flag(svc, caller, project_key, values, why)
        steps.append(_step("definition", target, "applied", changes=_diff({}, wanted)))
        steps.append(_store(svc, caller, project_key, key, loaded, why))
    else:
        steps.append(_store(svc, caller, project_key, key, loaded, why))
        steps.append(_apply_definition(svc, caller, project_key, key, wanted, why))
    for env in env_rows:
        if _plan_started(svc, caller, project_key, key, env.key):
            target = f"flag {key!r} in {env.key!r}"
            steps.append(
                _step(
                    "environment", target, "unchanged", environment=env.key,
                    managed_by="rollout_plan",
                )
            )  # fmt: skip
        else:
            steps.append(_apply_environment(svc, caller, project_key, env.key, loaded, why))
        if c.environments[env.key].state != "off":
            steps.extend(_apply_guardrails(svc, caller, project_key, key, env.key, c, why))
            plan_step = _apply_plan(svc, caller, project_key, key, env.key, c, why)
            if plan_step is not None:
                steps.append(plan_step)
    steps.extend(_apply_tools(svc, caller, project_key, c, why))
    changed = [s for s in steps if s["outcome"] not in ("unchanged", "pending")]
    return {
        "project": project_key,
        "behavior": key,
        "hash": loaded.digest,
        "steps": steps,
        "changed": bool(changed),
        "pending": [s["change_request"] for s in steps if "change_request" in s],
        "refused": [s["target"] for s in steps if s["outcome"] == "refused"],
    }


# --- tools ---------------------------------------------------------------------------------


def _apply_tools(
    svc: Services, caller: Caller, project_key: str, c: Any, why: str, *, plan: bool = False
) -> list[dict[str, Any]]:
    """Register or update the contract's tools (risk, description, budget) through the
    governed tool use-cases; denials are left as they are (they are reductions made by
    people). ``plan``: what the policy would decide, nothing written."""
    from lockgate.control.agents import tools as registry

    existing = {t["key"]: t for t in registry.list_tools(svc, caller, project_key)["items"]}
    steps = []
    for decl in c.tools:
        target = f"tool {decl.key!r}"
        wanted = decl.registration()
        held = existing.get(decl.key)
        before = None if held is None else {f: held[f] for f in wanted}
        if before == wanted:
            steps.append(_step("tool", target, "unchanged"))
            continue
        pending = _pending_tool(svc, project_key, decl.key, wanted)
        if pending is not None and not plan:
            steps.append(_step("tool", target, "pending", change_request=pending))
            continue
        diff = _diff(before or {}, {k: v for k, v in wanted.items() if (before or {}).get(k) != v})
        try:
            if held is None:
                values = {"key": decl.key, **wanted}
                answer = registry.register_tool(svc, caller, project_key, values, why, plan=plan)
            else:
                answer = registry.update_tool(
                    svc, caller, project_key, decl.key, wanted, held["version"], why, plan=plan
                )
        except PolicyRefused as exc:
            steps.append(_step("tool", target, "refused", rule=exc.detail))
            continue
        if plan and isinstance(answer, Deferred):
            decision = answer.body["plan"]["decision"]
            steps.append(_decision_step("tool", target, decision, changes=diff))
        else:
            steps.append(_outcome("tool", target, answer, diff))
    return steps


def _pending_tool(svc: Services, project_key: str, key: str, wanted: dict[str, Any]) -> int | None:
    """An open change request that registers or changes the tool to exactly ``wanted``."""
    with svc.view() as conn:
        rows = conn.execute(
            select(change_requests.c.id, change_requests.c.change)
            .join(projects, projects.c.id == change_requests.c.project_id)
            .where(
                projects.c.key == project_key,
                change_requests.c.object_type == "tool",
                change_requests.c.object_key == key,
                change_requests.c.state.in_(("open", "approved")),
            )
            .order_by(change_requests.c.id)
        ).all()
    for row in rows:
        after = (row.change or {}).get("after") or {}
        if {f: after.get(f) for f in wanted} == wanted:
            return int(row.id)
    return None


# --- guardrails and the staged rollout -------------------------------------------------------

_AGGREGATIONS = {"rate": "rate", "count": "count", "sum": "sum", "avg": "mean"}
"""Contract aggregations the guardrail cycle evaluates from summaries (percentiles, max and
min are not kept by summaries: those guardrails stay declared)."""
_PROM_AGGREGATIONS = _AGGREGATIONS | {p: p for p in ("p50", "p90", "p95", "p99")}
"""With a Prometheus query the percentile is the query's (e.g. ``histogram_quantile``)."""
_ACTIONS = {"alert": "notify", "pause": "pause", "fallback": "fallback", "off": "kill"}


def guardrail_bodies(c: Any) -> dict[str, dict[str, Any]]:
    """The contract's enforceable guardrails as guardrail definitions, by key."""
    import re

    found: dict[str, dict[str, Any]] = {}
    for g in c.guardrails:
        aggregation = _AGGREGATIONS.get(g.aggregation or "rate")
        if g.prometheus is not None:  # the query computes it; the name only describes it
            aggregation = _PROM_AGGREGATIONS.get(g.aggregation or "rate")
        if g.threshold is None or aggregation is None:
            continue
        key = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{g.metric}-{aggregation}").strip("-")[:128]
        body: dict[str, Any] = {
            "metric": g.metric,
            "aggregation": aggregation,
            "comparison": g.comparison or "absolute",
            "threshold": g.threshold,
            "action": _ACTIONS.get(g.action or "pause", "pause"),
        }
        if g.window is not None:
            body["window"] = g.window
        if g.min_sample is not None:
            body["min_sample"] = g.min_sample
        if g.per is not None:
            body["per"] = g.per
        if g.prometheus is not None:
            body["data_source"] = "prometheus"
            body["query"] = g.prometheus.query
            if g.prometheus.variation_label is not None:
                body["variation_label"] = g.prometheus.variation_label
            if g.prometheus.sample_query is not None:
                body["sample_query"] = g.prometheus.sample_query
        found[key or "guardrail"] = body
    return found


def plan_body(c: Any) -> dict[str, Any] | None:
    """The contract's rollout stages as a staged rollout plan (``None`` without stages)."""
    if not c.stages:
        return None
    audience = c.first_audience.rule_clauses() if c.first_audience is not None else []
    stages = []
    for s in c.stages:
        stage: dict[str, Any] = {"percent": s.percent or 100, "variation": s.mode}
        if s.audience == "first_audience":
            stage["clauses"] = audience
        if s.min_hold is not None:
            stage["min_hold"] = s.min_hold
        if s.min_sample is not None:
            stage["min_sample"] = s.min_sample
        if s.approval:
            stage["approval"] = True
        stages.append(stage)
    return {"variation": c.stages[-1].mode, "stable": c.fallback, "stages": stages}


def _apply_guardrails(
    svc: Services, caller: Caller, project_key: str, key: str, env_key: str, c: Any, why: str
) -> list[dict[str, Any]]:
    from lockgate.control.guardrails import definitions

    wanted = guardrail_bodies(c)
    existing = definitions.list_guardrails(svc, caller, project_key, key, env_key)["items"]
    versions = {g["key"]: g["version"] for g in existing}
    steps = []
    for name, body in wanted.items():
        target = f"guardrail {name!r} of {key!r} in {env_key!r}"
        pending = _pending_guardrail(svc, project_key, key, env_key, name, body)
        if pending is not None:
            steps.append(
                _step("guardrail", target, "pending", environment=env_key, change_request=pending)
            )
            continue
        try:
            answer = definitions.put_guardrail(
                svc, caller, project_key, key, env_key, name, body, reason=why, source="contract"
            )
        except (PolicyRefused, InvalidInput) as exc:
            steps.append(
                _step("guardrail", target, "refused", environment=env_key, rule=exc.detail)
            )
            continue
        if isinstance(answer, Deferred):
            steps.append(_outcome("guardrail", target, answer, body, env_key))
            continue
        same = versions.get(name) == answer["version"]
        steps.append(
            _step("guardrail", target, "unchanged" if same else "applied", environment=env_key)
        )
    for old in existing:
        if old["source"] != "contract" or old["key"] in wanted:
            continue
        target = f"guardrail {old['key']!r} of {key!r} in {env_key!r}"
        try:
            answer = definitions.delete_guardrail(
                svc, caller, project_key, key, env_key, old["key"], reason=why
            )
        except PolicyRefused as exc:
            steps.append(
                _step("guardrail", target, "refused", environment=env_key, rule=exc.detail)
            )
            continue
        steps.append(_outcome("guardrail", target, answer, {"deleted": True}, env_key))
    return steps


def _pending_guardrail(
    svc: Services, project_key: str, key: str, env_key: str, name: str, body: dict[str, Any]
) -> int | None:
    from lockgate.guardrails import model as guard_model

    spec = guard_model.read_guardrail(body | {"key": name}, flag=key, environment=env_key)
    after = {"source": "contract", **spec.document()}
    with svc.view() as conn:
        project = lookup.project(conn, project_key)
        return _pending_request(
            conn, project.id, f"{key}/{name}", env_key, after, AuditAction.GUARDRAIL_UPDATED
        )


def _apply_plan(
    svc: Services, caller: Caller, project_key: str, key: str, env_key: str, c: Any, why: str
) -> dict[str, Any] | None:
    from lockgate.control.guardrails import definitions
    from lockgate.errors import NotFound
    from lockgate.guardrails import model as guard_model

    body = plan_body(c)
    if body is None:
        return None
    target = f"rollout plan of {key!r} in {env_key!r}"
    after = {
        "source": "contract",
        **guard_model.read_plan(body, flag=key, environment=env_key).document(),
    }
    with svc.view() as conn:
        project = lookup.project(conn, project_key)
        for action in (AuditAction.ROLLOUT_PLAN_CREATED, AuditAction.ROLLOUT_PLAN_UPDATED):
            pending = _pending_request(conn, project.id, key, env_key, after, action)
            if pending is not None:
                return _step("rollout_plan", target, "pending", environment=env_key,
                             change_request=pending)  # fmt: skip
    try:
        before = definitions.get_plan(svc, caller, project_key, key, env_key)
    except NotFound:
        before = None
    try:
        answer = definitions.put_plan(
            svc, caller, project_key, key, env_key, body, reason=why, source="contract"
        )
    except (PolicyRefused, InvalidInput) as exc:
        return _step("rollout_plan", target, "refused", environment=env_key, rule=exc.detail)
    if isinstance(answer, Deferred):
        return _outcome("rollout_plan", target, answer, body, env_key)
    unchanged = before is not None and before["version"] == answer["version"]
    return _step(
        "rollout_plan", target, "unchanged" if unchanged else "applied", environment=env_key
    )


def _plan_started(svc: Services, caller: Caller, project_key: str, key: str, env_key: str) -> bool:
    """The environment's exposure is the rollout plan's once its first stage is applied."""
    from lockgate.control.guardrails import definitions
    from lockgate.errors import NotFound

    try:
        plan = definitions.get_plan(svc, caller, project_key, key, env_key)
    except NotFound:
        return False
    return int(plan["stage"]) >= 0


def _apply_definition(
    svc: Services, caller: Caller, project_key: str, key: str, wanted: dict[str, Any], why: str
) -> dict[str, Any]:
    target = f"flag {key!r}"
    current = flags.get_flag(svc, caller, project_key, key)
    changes = {k: v for k, v in wanted.items() if current.get(k) != v}
    if not changes:
        return _step("definition", target, "unchanged")
    with svc.view() as conn:
        project = lookup.project(conn, project_key)
        after = {k: current[k] for k in flags.DEFINITION_FIELDS} | changes
        pending = _pending_request(conn, project.id, key, None, after, AuditAction.FLAG_UPDATED)
    if pending is not None:
        return _step("definition", target, "pending", change_request=pending)
    try:
        answer = flags.update_flag(svc, caller, project_key, key, changes, current["version"], why)
    except PolicyRefused as exc:
        return _step("definition", target, "refused", rule=exc.detail)
    return _outcome("definition", target, answer, _diff(current, changes))


def _outcome(
    kind: str,
    target: str,
    answer: dict[str, Any] | Deferred,
    diff: dict[str, Any],
    environment: str | None = None,
) -> dict[str, Any]:
    if isinstance(answer, Deferred):
        body = answer.body
        return _step(
            kind,
            target,
            "change_request",
            environment=environment,
            change_request=body["id"],
            rule=body["policy"]["rule"],
            approvals_required=body["approvals_required"],
            changes=diff,
        )
    return _step(kind, target, "applied", environment=environment, changes=diff)


def _apply_environment(
    svc: Services, caller: Caller, project_key: str, env_key: str, loaded: Loaded, why: str
) -> dict[str, Any]:
    c = loaded.contract
    key = _key(loaded)
    target = f"flag {key!r} in {env_key!r}"
    view = flags.get_flag(svc, caller, project_key, key)["environments"][env_key]
    config = {k: v for k, v in view.items() if k in flags.CONFIG_FIELDS}
    changes = desired_config(c, c.environments[env_key], config)
    if not changes:
        return _step("environment", target, "unchanged", environment=env_key)
    with svc.view() as conn:
        project = lookup.project(conn, project_key)
        pending = _pending_request(
            conn, project.id, key, env_key, {**config, **changes}, AuditAction.FLAG_CONFIGURED
        )
    if pending is not None:
        return _step("environment", target, "pending", environment=env_key, change_request=pending)
    try:
        answer = flags.update_flag_config(
            svc, caller, project_key, key, env_key, changes, view["version"], why
        )
    except PolicyRefused as exc:
        return _step("environment", target, "refused", environment=env_key, rule=exc.detail)
    return _outcome("environment", target, answer, _diff(config, changes), env_key)


def _contract_change(
    caller: Caller, project_key: str, key: str, loaded: Loaded, before: Any, base: int, why: str
) -> Change:
    return Change(
        action=AuditAction.CONTRACT_APPLIED,
        object_type=ObjectType.FLAG,
        project=project_key,
        object_key=key,
        before=before,
        after=_contract_document(loaded),
        base_version=base,
        reason=why,
        actor_id=caller.actor_id,
        actor_name=caller.actor_name,
    )


def _contract_document(loaded: Loaded) -> dict[str, Any]:
    """What a stored contract version holds (and what a change request for it shows)."""
    return {
        "rules": loaded.contract.rules(),
        "hash": loaded.digest,
        "file": loaded.filename[:300],
        "tickets": [s.ticket for s in loaded.contract.audit_sources if s.ticket],
        "source": loaded.source,
    }


def _judge_contract(
    conn: Any, project: Row[Any], row: Row[Any], rules: dict[str, Any]
) -> tuple[Verdict, list[int]]:
    """A contract that allows more than the stored one is an expansion of authority."""
    reasons = loosening(row.contract, rules)
    env_rows = list(
        conn.execute(select(environments).where(environments.c.project_id == project.id))
    )
    tier = postures.strictest([row.risk_tier, str(rules.get("risk_level") or "low")])
    # A contract allowing more is frozen, like any expansion, by an incident covering it.
    frozen = gate.frozen_by(conn, [e.id for e in env_rows], [row]) if reasons else []
    verdict = postures.decide(
        Direction.EXPANSION if reasons else Direction.REDUCTION,
        reasons=reasons,
        scopes=gate.scopes_for([tier], env_rows) if reasons else [],
        posture=gate.posture_of(project),
        frozen_by=frozen,
    )
    return verdict, sorted(e.id for e in env_rows)


def _store(
    svc: Services, caller: Caller, project_key: str, key: str, loaded: Loaded, why: str
) -> dict[str, Any]:
    """Store the contract as the behavior's new version, governed like any change."""
    target = f"flag {key!r}"
    document = _contract_document(loaded)
    with svc.change() as tx:
        project = caller.project(tx.conn, project_key, Action.WRITE_PROJECT_OBJECT)
        row = lookup.flag(tx.conn, project, key)
        latest = _latest_version(tx.conn, row.id)
        if (
            latest is not None
            and latest.hash == loaded.digest
            and row.contract == document["rules"]
        ):
            return _step("contract", target, "unchanged", version=latest.version)
        pending = _pending_request(
            tx.conn, project.id, key, None, document, AuditAction.CONTRACT_APPLIED
        )
        if pending is not None:
            return _step("contract", target, "pending", change_request=pending)
        base = latest.version if latest else 0
        change = _contract_change(caller, project_key, key, loaded, row.contract, base, why)
        verdict, env_ids = _judge_contract(tx.conn, project, row, document["rules"])
        try:
            deferred = gate.govern(tx, caller, project, change, verdict, environment_ids=env_ids)
        except PolicyRefused as exc:
            return _step("contract", target, "refused", rule=exc.detail)
        if deferred is not None:
            body = deferred.body
            return _step(
                "contract",
                target,
                "change_request",
                change_request=body["id"],
                rule=body["policy"]["rule"],
                approvals_required=body["approvals_required"],
                reasons=list(verdict.reasons),
            )
        stored = _write_contract(tx, caller, row, change, {"policy": verdict.document()})
    return _step("contract", target, "applied", version=stored["version"], hash=loaded.digest)


def _write_contract(
    tx: Transaction, caller: Caller, row: Row[Any], change: Change, evidence: dict[str, Any]
) -> dict[str, Any]:
    after = dict(change.after or {})
    version = (change.base_version or 0) + 1
    entry = tx.record(
        caller,
        {
            "action": AuditAction.CONTRACT_APPLIED.value,
            "object_type": "flag",
            "object_key": row.key,
            "project": change.project,
            "before": row.contract,
            "after": after["rules"],
            "reason": change.reason,
            "risk_tier": row.risk_tier,
            "evidence": evidence,
            "refs": {
                **dict(change.refs),
                "contract_version": version,
                "contract_hash": after["hash"],
                "file": after["file"],
                "tickets": after["tickets"],
            },
        },
    )
    tx.conn.execute(
        insert(contract_versions).values(
            flag_id=row.id,
            version=version,
            hash=after["hash"],
            source=after["source"],
            filename=after["file"],
            rules=after["rules"],
            created_at=tx.now,
            created_by=caller.actor_name,
            audit_seq=entry.seq,
        )
    )
    tx.conn.execute(
        update(flags_table).where(flags_table.c.id == row.id).values(contract=after["rules"])
    )
    return {"behavior": row.key, "version": version, "hash": after["hash"]}


def apply_contract_change(
    tx: Transaction, caller: Caller, change: Change, evidence: dict[str, Any]
) -> dict[str, Any]:
    """Apply an approved contract version (from a change request) if no other came first."""
    project = caller.project(tx.conn, change.project, Action.WRITE_PROJECT_OBJECT)
    row = lookup.flag(tx.conn, project, change.object_key)
    latest = _latest_version(tx.conn, row.id)
    current = latest.version if latest else 0
    if current != change.base_version:
        raise gate.target_moved(change, current)
    return _write_contract(tx, caller, row, change, evidence)


# --- export and history -------------------------------------------------------------------


def export_behavior(svc: Services, caller: Caller, project_key: str, key: str) -> dict[str, Any]:
    """The contract for a behavior's live state, and the version last applied (if any)."""
    with svc.view() as conn:
        project = caller.project(conn, project_key, Action.READ)
        row = lookup.flag(conn, project, key)
        view = flags.flag_view(conn, row)
        latest = _latest_version(conn, row.id)
    tools = [] if latest is None else _declared_tools(svc, caller, project_key, latest)
    return {
        "behavior": key,
        "contract": export_contract(view, row.contract, tools),
        "applied": None
        if latest is None
        else {"version": latest.version, "hash": latest.hash, "file": latest.filename},
    }


def _declared_tools(
    svc: Services, caller: Caller, project_key: str, latest: Row[Any]
) -> list[dict[str, Any]]:
    """The registered tools the last applied contract declares, as the registry holds them
    now (a declared tool not registered — its change request still open — is left out)."""
    from lockgate.control.agents import tools as registry

    try:
        declared = [t.key for t in load(latest.source, latest.filename).contract.tools]
    except InvalidInput:  # a contract older than today's schema: its tools are not known
        return []
    if not declared:
        return []
    held = {t["key"]: t for t in registry.list_tools(svc, caller, project_key)["items"]}
    return [held[k] for k in declared if k in held]


def contract_history(
    svc: Services,
    caller: Caller,
    project_key: str,
    key: str,
    limit: int = 50,
    cursor: str | None = None,
) -> lookup.Page:
    limit, offset = lookup.page_args(limit, cursor)
    with svc.view() as conn:
        project = caller.project(conn, project_key, Action.READ)
        row = lookup.flag(conn, project, key)
        where = contract_versions.c.flag_id == row.id
        total = conn.execute(
            select(func.count()).select_from(contract_versions).where(where)
        ).scalar_one()
        rows = conn.execute(
            select(contract_versions)
            .where(where)
            .order_by(contract_versions.c.version.desc())
            .offset(offset)
            .limit(limit)
        ).all()
    items = [
        {
            "version": r.version,
            "hash": r.hash,
            "file": r.filename,
            "created_at": r.created_at,
            "created_by": r.created_by,
            "audit_seq": r.audit_seq,
            "rules": r.rules,
            "source": r.source,
        }
        for r in rows
    ]
    return lookup.make_page(items, limit, offset, total)
