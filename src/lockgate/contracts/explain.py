"""Each line of a contract traced to what enforces it — or to nothing.

Statuses: ``enforced`` (a runtime control of the control plane holds it), ``recorded`` (an
audit source keeps it), ``declared`` (stored, but nothing acts on it yet) and
``unenforced`` (free text nothing can execute; the line says what to add).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lockgate.contracts.model import ROOT, Contract
from lockgate.contracts.tree import MapNode, Node, ScalarNode, SeqNode
from lockgate.lifecycle.rules import RuleError, rule_from_contract

__all__ = ["Trace", "explain"]

ENFORCED = "enforced"
RECORDED = "recorded"
DECLARED = "declared"
UNENFORCED = "unenforced"


@dataclass(frozen=True, slots=True)
class Trace:
    line: int
    field: str
    status: str
    by: str

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "field": self.field, "status": self.status, "by": self.by}


def _items(body: MapNode, name: str) -> list[Node]:
    node = body.get(name)
    return list(node.items) if isinstance(node, SeqNode) else []


def _simple(c: Contract) -> dict[str, tuple[str, str]]:
    tier = c.risk_level
    return {
        "behavior": (RECORDED, "the behavior's name on its flag definition (audited)"),
        "key": (ENFORCED, "the flag key the application evaluates"),
        "kind": (
            RECORDED,
            f"behavior kind {c.kind!r} stored on the flag; filter with "
            "`lockgate flags list --behavior-kind`",
        ),
        "owner": (RECORDED, "the flag's owner (audited)"),
        "risk_level": (
            ENFORCED,
            f"risk tier {tier!r}: the project posture (posture.{tier}) decides the approvals "
            "each expansion needs",
        ),
        "default_state": (
            ENFORCED,
            f"served as {c.default_state!r} while off; what every new environment gets",
        ),
        "allowed_modes": (
            ENFORCED,
            "every configuration write is checked: serving another mode is refused",
        ),
    }


def explain(contract: Contract, root: Node, source: str | None = None) -> list[Trace]:
    """One trace per field and list item, in line order; with ``source``, one per line.

    A line inside a field's value (a segment under ``first_audience``, a guardrail's
    threshold) is traced to that field, with its status.
    """
    traces = _traces(contract, root)
    if source is None or not traces:
        return traces
    by_line = {t.line: t for t in traces}
    out: list[Trace] = []
    owner: Trace | None = None
    for number, text in enumerate(source.splitlines(), start=1):
        stripped = text.strip()
        if number in by_line:
            owner = by_line[number]
            out.append(owner)
        elif owner is not None and stripped and not stripped.startswith("#"):
            out.append(Trace(number, owner.field, owner.status, f"part of {owner.field}"))
    return out


def _traces(contract: Contract, root: Node) -> list[Trace]:
    if not isinstance(root, MapNode):
        return []
    body = root.get(ROOT)
    if not isinstance(body, MapNode):
        return []
    c = contract
    traces = [
        Trace(
            name.line,
            ROOT,
            RECORDED,
            "the contract: each applied version is stored with its source and hash, "
            "audited as contract:applied",
        )
        for name, _ in root.entries
        if name.value == ROOT
    ]
    simple = _simple(c)
    for name, _value in body.entries:
        label = str(name.value)
        if label in simple:
            status, by = simple[label]
            traces.append(Trace(name.line, label, status, by))
        elif label.startswith("x-"):
            traces.append(Trace(name.line, label, UNENFORCED, "a free-form note"))
        elif label in _LISTS:
            traces.append(Trace(name.line, label, _LISTS[label], _HEAD))
    for i, item in enumerate(_items(body, "allowed_modes")):
        mode = item.value if isinstance(item, ScalarNode) else "?"
        traces.append(Trace(item.line, f"allowed_modes[{i}]", ENFORCED, f"{mode!r} may be served"))
    traces.extend(_audience(c))
    traces.extend(_rollback(c))
    traces.extend(_guardrails(c))
    traces.extend(_approvals(c))
    traces.extend(_audit_sources(c))
    traces.extend(_cleanup(c))
    traces.extend(
        Trace(
            s.line,
            f"rollout_stages[{i}]",
            ENFORCED,
            "a stage of the staged rollout plan (approved under the posture): the guardrail "
            "cycle advances to it while every guardrail is healthy with enough data, and "
            "pauses on a breach (docs/guardrails.md)",
        )
        for i, s in enumerate(c.stages)
    )
    traces.extend(
        Trace(
            t.line,
            f"tools[{i}]",
            ENFORCED,
            f"tool {t.key!r} registered as {t.risk} (governed): each call is decided by the "
            "behavior's mode and the tier policy in the SDK's authorize_tool"
            + (", with its call budget" if t.budget else "")
            + " (docs/agents.md)",
        )
        for i, t in enumerate(c.tools)
    )
    for env, state in c.environments.items():
        served = (
            "off" if state.state == "off" else f"{state.mode} to {state.state.replace('_', ' ')}"
        )
        traces.append(
            Trace(
                state.line,
                f"environments.{env}",
                ENFORCED,
                f"the configuration in {env!r} serves {served} (applied through the posture)",
            )
        )
    heads = {"first_audience", "rollback_action", "cleanup_rule"}
    traces = [
        Trace(c.lines.get(t.field, t.line), t.field, t.status, t.by) if t.field in heads else t
        for t in traces
    ]
    return sorted((_summarize(t, traces) for t in traces), key=lambda t: t.line)


_HEAD = "a list: the weakest of its items (each item is traced on its own line)"
_STRENGTH = (UNENFORCED, DECLARED, RECORDED, ENFORCED)


def _summarize(trace: Trace, traces: list[Trace]) -> Trace:
    if trace.by != _HEAD:
        return trace
    inner = [t.status for t in traces if t.field.startswith((f"{trace.field}[", f"{trace.field}."))]
    status = min(inner, key=_STRENGTH.index) if inner else UNENFORCED
    return Trace(trace.line, trace.field, status, trace.by)


_EVALUATED = ("rate", "count", "sum", "avg")
"""Aggregations the guardrail cycle evaluates from summaries."""
_PERCENTILES = ("p50", "p90", "p95", "p99")
"""Evaluated too when a Prometheus query computes them."""

_LISTS = {
    "guardrails": ENFORCED,
    "approval_required_when": ENFORCED,
    "audit_sources": RECORDED,
    "rollout_stages": ENFORCED,
    "environments": ENFORCED,
    "tools": ENFORCED,
}


def _audience(c: Contract) -> list[Trace]:
    a = c.first_audience
    if a is None:
        return []
    if a.segment is not None:
        return [
            Trace(
                a.line,
                "first_audience",
                ENFORCED,
                f"rule contract-first-audience "
                f"(segment {a.segment!r}); an off behavior's first expansion must go there",
            )
        ]
    if a.clauses:
        return [
            Trace(
                a.line,
                "first_audience",
                ENFORCED,
                "rule contract-first-audience "
                "(clauses); an off behavior's first expansion must go there",
            )
        ]
    return [
        Trace(
            a.line,
            "first_audience",
            UNENFORCED,
            f"free text {a.description!r}: add a segment or clauses to enforce it",
        )
    ]


def _rollback(c: Contract) -> list[Trace]:
    r = c.rollback
    if r is None:
        return []
    if r.variation is not None:
        return [
            Trace(
                r.line,
                "rollback_action",
                ENFORCED,
                f"off variation {r.variation!r}: served when the behavior is turned off",
            )
        ]
    return [
        Trace(
            r.line,
            "rollback_action",
            UNENFORCED,
            f"free text; turning off serves {c.default_state!r} (add a variation)",
        )
    ]


def _guardrails(c: Contract) -> list[Trace]:
    out = []
    for i, g in enumerate(c.guardrails):
        evaluated = _EVALUATED + (_PERCENTILES if g.prometheus is not None else ())
        if g.bound and (g.aggregation or "rate") in evaluated:
            compared = (
                f"{g.threshold:g} worse than the stable variation"
                if g.comparison == "regression"
                else f"> {g.threshold:g}"
            )
            by = (
                f"guardrail on {g.metric!r} ({g.aggregation or 'rate'} {compared}"
                f"{' over ' + g.window if g.window else ''}, then {g.action or 'pause'}"
                f"{', read from Prometheus' if g.prometheus is not None else ''}): "
                "evaluated every cycle by the guardrail cycle in each environment the contract "
                "turns on, acting as system:guardrails (docs/guardrails.md)"
            )
            out.append(Trace(g.line, f"guardrails[{i}]", ENFORCED, by))
        elif g.bound:
            by = (
                f"guardrail on {g.metric!r} ({g.aggregation}): declared, not enforced — "
                "summaries keep count, sum and sum of squares, not percentiles, max or min"
            )
            out.append(Trace(g.line, f"guardrails[{i}]", DECLARED, by))
        else:
            out.append(
                Trace(
                    g.line,
                    f"guardrails[{i}]",
                    UNENFORCED,
                    f"metric {g.metric!r} named without threshold, window or action",
                )
            )
    return out


def _approvals(c: Contract) -> list[Trace]:
    out = []
    for i, a in enumerate(c.approvals):
        where = f"approval_required_when[{i}]"
        if a.clause is not None or a.segment is not None:
            bound = f"segment {a.segment!r}" if a.segment else "a context clause"
            out.append(
                Trace(
                    a.line,
                    where,
                    ENFORCED,
                    f"rule contract-approval-{i + 1}: contexts "
                    f"matching {bound} are served at most approval_required",
                )
            )
        elif a.action is not None:
            out.append(
                Trace(
                    a.line,
                    where,
                    DECLARED,
                    f"action kind {a.action!r}: the application "
                    "asks for a runtime approval before it (declared, not checked here)",
                )
            )
        else:
            out.append(
                Trace(
                    a.line,
                    where,
                    UNENFORCED,
                    f"free text {a.name!r}: bind it to a clause, segment or action",
                )
            )
    return out


def _audit_sources(c: Contract) -> list[Trace]:
    out = []
    for i, s in enumerate(c.audit_sources):
        where = f"audit_sources[{i}]"
        if s.ticket is not None:
            out.append(
                Trace(
                    s.line,
                    where,
                    RECORDED,
                    f"ticket {s.ticket} linked from the contract:applied audit entry",
                )
            )
        elif s.telemetry_event is not None:
            out.append(
                Trace(
                    s.line,
                    where,
                    DECLARED,
                    f"telemetry event {s.telemetry_event!r}: "
                    "emitted by the application, not checked by the control plane",
                )
            )
        elif "audit" in s.text.lower():
            out.append(
                Trace(
                    s.line,
                    where,
                    RECORDED,
                    "the lockgate audit log (contract:applied "
                    "and every flag change; `lockgate audit list`)",
                )
            )
        else:
            out.append(
                Trace(
                    s.line,
                    where,
                    UNENFORCED,
                    f"free text {s.text!r}: give a ticket URL or a telemetry_event",
                )
            )
    return out


def _cleanup(c: Contract) -> list[Trace]:
    k = c.cleanup
    if k is None:
        return []
    try:
        rule = rule_from_contract(k.document())
    except RuleError as problem:
        return [Trace(k.line, "cleanup_rule", UNENFORCED, f"cannot be read: {problem}")]
    if rule is None:
        return [
            Trace(
                k.line,
                "cleanup_rule",
                UNENFORCED,
                "free text no rule reads: add after (full_release, no_evaluation, date)",
            )
        ]
    return [
        Trace(
            k.line,
            "cleanup_rule",
            ENFORCED,
            f"cleanup-rules job: marks the behavior cleanup due {rule.summary()}"
            + ("" if k.after is not None else " (read from the words)"),
        )
    ]
