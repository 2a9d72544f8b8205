"""The contract's fields: read from positioned nodes, checked, and kept with their lines.

:func:`read_contract` accepts the article's ``ai_generated_software_control:`` block as
written — free text everywhere — and the executable detail a team adds: a behavior key and
kind, what the first audience means, what each approval condition is bound to, the fallback
variation, guardrail bindings, rollout stages, audit links, a machine-readable cleanup rule
and the state of each environment. Every problem names its field, line and column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from lockgate.contracts.tree import MapNode, Node, Problem, ScalarNode, SeqNode, plain
from lockgate.engine.modes import Mode
from lockgate.engine.operators import OPERATORS, SEGMENT_MATCH

__all__ = [
    "BEHAVIOR_KINDS",
    "ENVIRONMENT_STATES",
    "RISK_LEVELS",
    "ROOT",
    "ApprovalBinding",
    "Audience",
    "AuditSource",
    "Cleanup",
    "Contract",
    "EnvironmentState",
    "Guardrail",
    "Rollback",
    "Stage",
    "ToolDecl",
    "read_contract",
]

ROOT = "ai_generated_software_control"
BEHAVIOR_KINDS = (
    "ui_path",
    "backend_workflow",
    "model_route",
    "prompt",
    "tool_action",
    "data_movement",
    "permission_path",
    "integration",
)
"""The kinds of generated behavior (the article's "classify" step)."""
RISK_LEVELS = ("low", "medium", "high", "restricted")
ENVIRONMENT_STATES = ("off", "first_audience", "everyone")
AGGREGATIONS = ("rate", "count", "sum", "avg", "p50", "p90", "p95", "p99", "max", "min")
GUARDRAIL_ACTIONS = ("alert", "pause", "fallback", "off")
CLEANUP_AFTER = ("full_release", "no_evaluation", "date")
MODES = tuple(m.value for m in Mode)
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_WINDOW = re.compile(r"^[1-9][0-9]*[smhdw]$")

FIELDS = (
    "behavior", "key", "kind", "owner", "risk_level", "default_state", "first_audience",
    "allowed_modes", "guardrails", "approval_required_when", "rollback_action",
    "audit_sources", "cleanup_rule", "rollout_stages", "environments", "tools",
)  # fmt: skip
TOOL_RISKS = ("read", "draft", "write", "external", "irreversible")


@dataclass(frozen=True, slots=True)
class Audience:
    description: str
    segment: str | None
    clauses: tuple[dict[str, Any], ...]
    line: int

    @property
    def executable(self) -> bool:
        return self.segment is not None or bool(self.clauses)

    def rule_clauses(self) -> list[dict[str, Any]]:
        """The audience as engine clauses (a segment is a ``segment_match`` clause)."""
        if self.segment is not None:
            return [{"op": SEGMENT_MATCH, "values": [self.segment]}]
        return [dict(c) for c in self.clauses]


@dataclass(frozen=True, slots=True)
class ApprovalBinding:
    name: str
    clause: dict[str, Any] | None
    segment: str | None
    action: str | None
    line: int

    def rule_clauses(self) -> list[dict[str, Any]]:
        if self.segment is not None:
            return [{"op": SEGMENT_MATCH, "values": [self.segment]}]
        return [dict(self.clause)] if self.clause else []


@dataclass(frozen=True, slots=True)
class Guardrail:
    metric: str
    aggregation: str | None
    threshold: float | None
    window: str | None
    action: str | None
    line: int
    comparison: str | None = None
    """``absolute`` (the default: the aggregation against the threshold) or ``regression``
    (against the stable variation, the threshold a relative margin)."""
    min_sample: int | None = None
    per: str | None = None
    prometheus: PromQuery | None = None
    """Read from the configured Prometheus server instead of lockgate's summaries."""

    @property
    def bound(self) -> bool:
        return self.threshold is not None


@dataclass(frozen=True, slots=True)
class PromQuery:
    query: str
    variation_label: str | None = None
    sample_query: str | None = None


@dataclass(frozen=True, slots=True)
class Rollback:
    description: str
    variation: str | None
    line: int


@dataclass(frozen=True, slots=True)
class AuditSource:
    text: str
    ticket: str | None
    telemetry_event: str | None
    line: int


@dataclass(frozen=True, slots=True)
class Cleanup:
    description: str
    after: str | None
    healthy_review_windows: int | None
    date: str | None
    line: int
    days: int | None = None
    review_window: str | None = None

    def document(self) -> dict[str, Any]:
        """The rule as stored with the behavior (read by :mod:`lockgate.lifecycle.rules`)."""
        return {
            "description": self.description,
            "after": self.after,
            "healthy_review_windows": self.healthy_review_windows,
            "days": self.days,
            "review_window": self.review_window,
            "date": self.date,
            "line": self.line,
        }


@dataclass(frozen=True, slots=True)
class Stage:
    audience: str
    mode: str
    percent: float | None
    line: int
    min_hold: str | None = None
    min_sample: int | None = None
    approval: bool = False


@dataclass(frozen=True, slots=True)
class ToolDecl:
    """A tool the behavior calls, registered in the project with its risk class."""

    key: str
    risk: str
    description: str
    budget: dict[str, Any] | None
    line: int

    def registration(self) -> dict[str, Any]:
        """The tool's fields as the registry takes them (docs/agents.md)."""
        return {"risk": self.risk, "description": self.description, "budget": self.budget}


@dataclass(frozen=True, slots=True)
class EnvironmentState:
    state: str
    mode: str | None
    line: int


@dataclass
class Contract:
    """A checked contract; ``lines`` maps each field to the line it was written on."""

    behavior: str = ""
    key: str | None = None
    kind: str | None = None
    owner: str = ""
    risk_level: str = "low"
    default_state: str = "off"
    first_audience: Audience | None = None
    allowed_modes: tuple[str, ...] = MODES
    guardrails: list[Guardrail] = field(default_factory=list)
    approvals: list[ApprovalBinding] = field(default_factory=list)
    rollback: Rollback | None = None
    audit_sources: list[AuditSource] = field(default_factory=list)
    cleanup: Cleanup | None = None
    stages: list[Stage] = field(default_factory=list)
    environments: dict[str, EnvironmentState] = field(default_factory=dict)
    tools: list[ToolDecl] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)

    @property
    def fallback(self) -> str:
        """The variation served when the behavior is off or rolled back."""
        if self.rollback is not None and self.rollback.variation is not None:
            return self.rollback.variation
        return self.default_state

    def line_of(self, name: str) -> int:
        return self.lines.get(name, 0)

    def rules(self) -> dict[str, Any]:
        """What the control plane keeps enforcing after apply (stored with the behavior)."""
        audience = self.first_audience
        return {
            "allowed_modes": list(self.allowed_modes),
            "default_state": self.default_state,
            "fallback": self.fallback,
            "risk_level": self.risk_level,
            "first_audience": audience.rule_clauses()
            if audience is not None and audience.executable
            else None,
            "cleanup_rule": None if self.cleanup is None else self.cleanup.document(),
            "lines": {
                k: self.lines[k]
                for k in ("allowed_modes", "default_state", "first_audience", "risk_level")
                if k in self.lines
            },
        }


class _Reader:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def fail(self, path: str, node: Node, message: str) -> None:
        self.problems.append(Problem(path, message, node.line, node.column))

    def mapping(self, path: str, node: Node) -> MapNode | None:
        if not isinstance(node, MapNode):
            self.fail(path, node, "must be a mapping")
            return None
        seen: set[Any] = set()
        for key, _ in node.entries:
            if key.value in seen:
                self.fail(f"{path}.{key.value}", key, "duplicate key")
            seen.add(key.value)
        return node

    def text(self, path: str, node: Node) -> str | None:
        if isinstance(node, ScalarNode) and isinstance(node.value, str):
            return node.value
        self.fail(path, node, "must be a string")
        return None

    def choice(self, path: str, node: Node, choices: tuple[str, ...]) -> str | None:
        if not (isinstance(node, ScalarNode) and isinstance(node.value, str)):
            shown = repr(node.value) if isinstance(node, ScalarNode) else "a list or mapping"
            self.fail(path, node, f"must be one of {', '.join(choices)}, not {shown}")
            return None
        value = self.text(path, node)
        if value is not None and value not in choices:
            self.fail(path, node, f"unknown value {value!r}; one of {', '.join(choices)}")
            return None
        return value

    def key(self, path: str, node: Node) -> str | None:
        value = self.text(path, node)
        if value is not None and not _KEY.match(value):
            self.fail(path, node, "must be a key: letters, digits, '.', '_', '-' (at most 128)")
            return None
        return value

    def sequence(self, path: str, node: Node) -> tuple[Node, ...]:
        if isinstance(node, SeqNode):
            return node.items
        self.fail(path, node, "must be a list")
        return ()

    def fields(self, path: str, node: MapNode, allowed: tuple[str, ...]) -> dict[str, Node]:
        found: dict[str, Node] = {}
        for name, value in node.entries:
            label = str(name.value)
            if label not in allowed:
                self.fail(f"{path}.{label}", name, f"unknown field; one of {', '.join(allowed)}")
            elif label not in found:
                found[label] = value
        return found

    def number(self, path: str, node: Node) -> float | None:
        if (
            isinstance(node, ScalarNode)
            and isinstance(node.value, int | float)
            and not isinstance(node.value, bool)
        ):
            return float(node.value)
        self.fail(path, node, "must be a number")
        return None

    def clause(self, path: str, node: Node) -> dict[str, Any] | None:
        mapping = self.mapping(path, node)
        if mapping is None:
            return None
        parts = self.fields(
            path, mapping, ("attribute", "op", "values", "negate", "case_insensitive")
        )
        op_node = parts.get("op")
        if op_node is None:
            self.fail(f"{path}.op", mapping, "required")
            return None
        op = self.choice(f"{path}.op", op_node, (*OPERATORS, SEGMENT_MATCH))
        values = parts.get("values")
        if values is None:
            self.fail(f"{path}.values", mapping, "required")
        elif not isinstance(values, SeqNode) or not values.items:
            self.fail(f"{path}.values", values, "must be a non-empty list")
        if op != SEGMENT_MATCH and "attribute" in parts:
            self.text(f"{path}.attribute", parts["attribute"])
        elif op not in (SEGMENT_MATCH, None):
            self.fail(f"{path}.attribute", mapping, "required for this operator")
        return plain(mapping) if op is not None else None


def read_contract(root: Node) -> tuple[Contract | None, list[Problem]]:
    """The contract in ``root`` (a parsed YAML document) and every problem found."""
    reader = _Reader()
    top = reader.mapping("", root)
    if top is None:
        return None, reader.problems
    block = top.get(ROOT)
    for name, _ in top.entries:
        if name.value != ROOT:
            reader.fail(str(name.value), name, f"unknown top-level field; expected {ROOT}")
    if block is None:
        if not reader.problems:
            reader.fail(ROOT, root, "required")
        return None, reader.problems
    body = reader.mapping(ROOT, block)
    if body is None:
        return None, reader.problems
    contract = Contract()
    _read_body(reader, contract, body)
    _cross_check(reader, contract, body)
    if reader.problems:
        return None, sorted(reader.problems, key=lambda p: (p.line, p.column))
    return contract, []


def _read_body(r: _Reader, c: Contract, body: MapNode) -> None:
    seen: set[str] = set()
    for name, value in body.entries:
        label = str(name.value)
        path = f"{ROOT}.{label}"
        if label in seen:
            continue  # reported as a duplicate key by the mapping check
        seen.add(label)
        c.lines[label] = name.line
        if label.startswith("x-"):
            c.notes[label] = plain(value)
            continue
        reader = _FIELD_READERS.get(label)
        if reader is None:
            r.fail(path, name, "unknown field (free-form notes go in fields named x-…)")
            continue
        reader(r, c, path, value)
    for required in ("behavior", "owner", "risk_level", "allowed_modes"):
        if required not in seen:
            r.fail(f"{ROOT}.{required}", body, "required")


def _read_behavior(r: _Reader, c: Contract, path: str, node: Node) -> None:
    c.behavior = r.text(path, node) or ""


def _read_key(r: _Reader, c: Contract, path: str, node: Node) -> None:
    c.key = r.key(path, node)


def _read_kind(r: _Reader, c: Contract, path: str, node: Node) -> None:
    c.kind = r.choice(path, node, BEHAVIOR_KINDS)


def _read_owner(r: _Reader, c: Contract, path: str, node: Node) -> None:
    c.owner = r.text(path, node) or ""


def _read_risk(r: _Reader, c: Contract, path: str, node: Node) -> None:
    c.risk_level = r.choice(path, node, RISK_LEVELS) or c.risk_level


def _read_default_state(r: _Reader, c: Contract, path: str, node: Node) -> None:
    c.default_state = r.choice(path, node, MODES) or c.default_state


def _read_modes(r: _Reader, c: Contract, path: str, node: Node) -> None:
    modes: list[str] = []
    items = r.sequence(path, node)
    if isinstance(node, SeqNode) and not items:
        r.fail(path, node, "must list at least one mode")
    for i, item in enumerate(items):
        mode = r.choice(f"{path}[{i}]", item, MODES)
        if mode is None:
            continue
        if mode in modes:
            r.fail(f"{path}[{i}]", item, f"mode {mode!r} listed twice")
        modes.append(mode)
    if modes:
        c.allowed_modes = tuple(m for m in MODES if m in modes)


def _description_or_map(
    r: _Reader, path: str, node: Node, allowed: tuple[str, ...]
) -> tuple[str, dict[str, Node]]:
    """A field written as free text, or as a mapping with a description and detail."""
    if isinstance(node, ScalarNode):
        return r.text(path, node) or "", {}
    mapping = r.mapping(path, node)
    if mapping is None:
        return "", {}
    parts = r.fields(path, mapping, ("description", *allowed))
    text = r.text(f"{path}.description", parts["description"]) if "description" in parts else ""
    return text or "", parts


def _read_audience(r: _Reader, c: Contract, path: str, node: Node) -> None:
    text, parts = _description_or_map(r, path, node, ("segment", "clauses"))
    segment = r.key(f"{path}.segment", parts["segment"]) if "segment" in parts else None
    clauses: list[dict[str, Any]] = []
    if "clauses" in parts:
        for i, item in enumerate(r.sequence(f"{path}.clauses", parts["clauses"])):
            clause = r.clause(f"{path}.clauses[{i}]", item)
            if clause is not None:
                clauses.append(clause)
    if "segment" in parts and "clauses" in parts:
        r.fail(path, node, "name a segment or list clauses, not both")
    c.first_audience = Audience(text, segment, tuple(clauses), node.line)


def _read_guardrails(r: _Reader, c: Contract, path: str, node: Node) -> None:
    for i, item in enumerate(r.sequence(path, node)):
        where = f"{path}[{i}]"
        if isinstance(item, ScalarNode):
            metric = r.text(where, item)
            if metric is not None:
                c.guardrails.append(Guardrail(metric, None, None, None, None, item.line))
            continue
        mapping = r.mapping(where, item)
        if mapping is None:
            continue
        parts = r.fields(
            where,
            mapping,
            ("metric", "aggregation", "threshold", "window", "action", "comparison",
             "min_sample", "per", "prometheus"),
        )  # fmt: skip
        if "metric" not in parts:
            r.fail(f"{where}.metric", mapping, "required")
            continue
        metric = r.text(f"{where}.metric", parts["metric"]) or ""
        aggregation = (
            r.choice(f"{where}.aggregation", parts["aggregation"], AGGREGATIONS)
            if "aggregation" in parts
            else None
        )
        threshold = (
            r.number(f"{where}.threshold", parts["threshold"]) if "threshold" in parts else None
        )
        window = None
        if "window" in parts:
            window = r.text(f"{where}.window", parts["window"])
            if window is not None and not _WINDOW.match(window):
                r.fail(f"{where}.window", parts["window"], "must be a duration such as 15m, 1h, 7d")
        action = (
            r.choice(f"{where}.action", parts["action"], GUARDRAIL_ACTIONS)
            if "action" in parts
            else None
        )
        comparison = (
            r.choice(f"{where}.comparison", parts["comparison"], ("absolute", "regression"))
            if "comparison" in parts
            else None
        )
        min_sample = _whole(r, f"{where}.min_sample", parts.get("min_sample"))
        per = r.key(f"{where}.per", parts["per"]) if "per" in parts else None
        prom = _read_prom(r, f"{where}.prometheus", parts.get("prometheus"))
        c.guardrails.append(
            Guardrail(
                metric, aggregation, threshold, window, action, item.line,
                comparison, min_sample, per, prom,
            )
        )  # fmt: skip


def _read_prom(r: _Reader, path: str, node: Node | None) -> PromQuery | None:
    """``prometheus: {query, variation_label, sample_query}`` of a guardrail."""
    if node is None:
        return None
    mapping = r.mapping(path, node)
    if mapping is None:
        return None
    parts = r.fields(path, mapping, ("query", "variation_label", "sample_query"))
    if "query" not in parts:
        r.fail(f"{path}.query", mapping, "required: a PromQL instant query")
        return None
    query = r.text(f"{path}.query", parts["query"])
    label = (
        r.text(f"{path}.variation_label", parts["variation_label"])
        if ("variation_label" in parts)
        else None
    )
    sample = (
        r.text(f"{path}.sample_query", parts["sample_query"]) if ("sample_query" in parts) else None
    )
    if query is None or not query.strip():
        return None
    return PromQuery(query, label, sample)


def _whole(r: _Reader, path: str, node: Node | None) -> int | None:
    if node is None:
        return None
    if (
        isinstance(node, ScalarNode)
        and isinstance(node.value, int)
        and not isinstance(node.value, bool)
        and node.value >= 0
    ):
        return node.value
    r.fail(path, node, "must be a whole number, 0 or more")
    return None


def _read_approvals(r: _Reader, c: Contract, path: str, node: Node) -> None:
    for i, item in enumerate(r.sequence(path, node)):
        where = f"{path}[{i}]"
        if isinstance(item, ScalarNode):
            name = r.text(where, item)
            if name is not None:
                c.approvals.append(ApprovalBinding(name, None, None, None, item.line))
            continue
        mapping = r.mapping(where, item)
        if mapping is None:
            continue
        parts = r.fields(where, mapping, ("name", "clause", "segment", "action"))
        name = r.text(f"{where}.name", parts["name"]) if "name" in parts else None
        if "name" not in parts:
            r.fail(f"{where}.name", mapping, "required")
        bound = [k for k in ("clause", "segment", "action") if k in parts]
        if len(bound) > 1:
            r.fail(
                where,
                mapping,
                f"bind to one of clause, segment or action, not {' and '.join(bound)}",
            )
        clause = r.clause(f"{where}.clause", parts["clause"]) if "clause" in parts else None
        segment = r.key(f"{where}.segment", parts["segment"]) if "segment" in parts else None
        action = r.key(f"{where}.action", parts["action"]) if "action" in parts else None
        c.approvals.append(ApprovalBinding(name or "", clause, segment, action, item.line))


def _read_rollback(r: _Reader, c: Contract, path: str, node: Node) -> None:
    text, parts = _description_or_map(r, path, node, ("variation",))
    variation = (
        r.choice(f"{path}.variation", parts["variation"], MODES) if "variation" in parts else None
    )
    c.rollback = Rollback(text, variation, node.line)


def _read_audit_sources(r: _Reader, c: Contract, path: str, node: Node) -> None:
    for i, item in enumerate(r.sequence(path, node)):
        where = f"{path}[{i}]"
        if isinstance(item, ScalarNode):
            text = r.text(where, item)
            if text is not None:
                c.audit_sources.append(AuditSource(text, None, None, item.line))
            continue
        text, parts = _description_or_map(r, where, item, ("ticket", "telemetry_event"))
        ticket = r.text(f"{where}.ticket", parts["ticket"]) if "ticket" in parts else None
        if ticket is not None and not ticket.startswith(("https://", "http://")):
            r.fail(f"{where}.ticket", parts["ticket"], "must be an http(s) URL")
        event = (
            r.text(f"{where}.telemetry_event", parts["telemetry_event"])
            if "telemetry_event" in parts
            else None
        )
        if isinstance(item, MapNode) and ticket is None and event is None:
            r.fail(where, item, "name a ticket URL or a telemetry_event")
        c.audit_sources.append(AuditSource(text, ticket, event, item.line))


def _whole_number(r: _Reader, path: str, parts: dict[str, Node], name: str) -> int | None:
    if name not in parts:
        return None
    n = parts[name]
    if (
        isinstance(n, ScalarNode)
        and isinstance(n.value, int)
        and not isinstance(n.value, bool)
        and n.value >= 0
    ):
        return n.value
    r.fail(f"{path}.{name}", n, "must be a whole number, 0 or more")
    return None


def _read_cleanup(r: _Reader, c: Contract, path: str, node: Node) -> None:
    names = ("after", "healthy_review_windows", "days", "review_window", "date")
    text, parts = _description_or_map(r, path, node, names)
    after = r.choice(f"{path}.after", parts["after"], CLEANUP_AFTER) if "after" in parts else None
    windows = _whole_number(r, path, parts, "healthy_review_windows")
    days = _whole_number(r, path, parts, "days")
    window = None
    if "review_window" in parts:
        window = r.text(f"{path}.review_window", parts["review_window"])
        if window is not None and not _WINDOW.match(window):
            r.fail(f"{path}.review_window", parts["review_window"], "a duration like 7d or 2w")
            window = None
    date = r.text(f"{path}.date", parts["date"]) if "date" in parts else None
    if after == "date" and date is None:
        r.fail(f"{path}.date", node, "required when after is date")
    if after == "no_evaluation" and not days:
        r.fail(f"{path}.days", node, "required (1 or more) when after is no_evaluation")
    c.cleanup = Cleanup(text, after, windows, date, node.line, days, window)


def _read_stages(r: _Reader, c: Contract, path: str, node: Node) -> None:
    for i, item in enumerate(r.sequence(path, node)):
        where = f"{path}[{i}]"
        mapping = r.mapping(where, item)
        if mapping is None:
            continue
        parts = r.fields(
            where, mapping, ("audience", "mode", "percent", "min_hold", "min_sample", "approval")
        )
        audience = (
            r.choice(f"{where}.audience", parts["audience"], ("first_audience", "everyone"))
            if "audience" in parts
            else "everyone"
        )
        mode = r.choice(f"{where}.mode", parts["mode"], MODES) if "mode" in parts else None
        if "mode" not in parts:
            r.fail(f"{where}.mode", mapping, "required")
        percent = r.number(f"{where}.percent", parts["percent"]) if "percent" in parts else None
        if percent is not None and not 0 < percent <= 100:
            r.fail(f"{where}.percent", parts["percent"], "must be more than 0 and at most 100")
        hold = None
        if "min_hold" in parts:
            hold = r.text(f"{where}.min_hold", parts["min_hold"])
            if hold is not None and not _WINDOW.match(hold):
                r.fail(f"{where}.min_hold", parts["min_hold"], "must be a duration such as 1h")
        sample = _whole(r, f"{where}.min_sample", parts.get("min_sample"))
        approval = False
        if "approval" in parts:
            node = parts["approval"]
            if isinstance(node, ScalarNode) and isinstance(node.value, bool):
                approval = node.value
            else:
                r.fail(f"{where}.approval", node, "true or false")
        c.stages.append(
            Stage(audience or "everyone", mode or "off", percent, item.line, hold, sample, approval)
        )


def _read_environments(r: _Reader, c: Contract, path: str, node: Node) -> None:
    mapping = r.mapping(path, node)
    if mapping is None:
        return
    for name, value in mapping.entries:
        env = str(name.value)
        where = f"{path}.{env}"
        if r.key(where, name) is None or env in c.environments:
            continue
        if isinstance(value, ScalarNode):
            state = r.choice(where, value, ("off",))
            if state is not None:
                c.environments[env] = EnvironmentState("off", None, name.line)
            continue
        env_map = r.mapping(where, value)
        if env_map is None:
            continue
        parts = r.fields(where, env_map, ("state", "mode"))
        state = (
            r.choice(f"{where}.state", parts["state"], ENVIRONMENT_STATES)
            if "state" in parts
            else None
        )
        if "state" not in parts:
            r.fail(f"{where}.state", env_map, "required")
        mode = r.choice(f"{where}.mode", parts["mode"], MODES) if "mode" in parts else None
        if state in ("first_audience", "everyone") and "mode" not in parts:
            r.fail(f"{where}.mode", env_map, f"required when state is {state}")
        if state is not None:
            c.environments[env] = EnvironmentState(state, mode, name.line)


def _read_tools(r: _Reader, c: Contract, path: str, node: Node) -> None:
    seen: set[str] = set()
    for i, item in enumerate(r.sequence(path, node)):
        where = f"{path}[{i}]"
        mapping = r.mapping(where, item)
        if mapping is None:
            continue
        parts = r.fields(where, mapping, ("key", "risk", "description", "budget"))
        for required in ("key", "risk"):
            if required not in parts:
                r.fail(f"{where}.{required}", mapping, "required")
        if "key" not in parts or "risk" not in parts:
            continue
        key = r.key(f"{where}.key", parts["key"])
        risk = r.choice(f"{where}.risk", parts["risk"], TOOL_RISKS)
        text = (
            r.text(f"{where}.description", parts["description"]) if "description" in parts else ""
        )
        budget = _read_tool_budget(r, f"{where}.budget", parts.get("budget"))
        if key is not None and key in seen:
            r.fail(f"{where}.key", parts["key"], f"tool {key!r} listed twice")
        if key is not None and risk is not None:
            seen.add(key)
            c.tools.append(ToolDecl(key, risk, text or "", budget, item.line))


def _read_tool_budget(r: _Reader, path: str, node: Node | None) -> dict[str, Any] | None:
    if node is None:
        return None
    mapping = r.mapping(path, node)
    if mapping is None:
        return None
    parts = r.fields(path, mapping, ("calls", "window", "per"))
    calls = _whole(r, f"{path}.calls", parts.get("calls"))
    window = _whole(r, f"{path}.window", parts.get("window"))
    per = r.key(f"{path}.per", parts["per"]) if "per" in parts else "key"
    for name, value in (("calls", calls), ("window", window)):
        if name not in parts:
            r.fail(f"{path}.{name}", mapping, "required")
        elif value is not None and value < 1:
            r.fail(f"{path}.{name}", parts[name], "must be at least 1")
    if calls is None or window is None or per is None or calls < 1 or window < 1:
        return None
    return {"calls": calls, "window": window, "per": per}


_FIELD_READERS = {
    "behavior": _read_behavior,
    "key": _read_key,
    "kind": _read_kind,
    "owner": _read_owner,
    "risk_level": _read_risk,
    "default_state": _read_default_state,
    "first_audience": _read_audience,
    "allowed_modes": _read_modes,
    "guardrails": _read_guardrails,
    "approval_required_when": _read_approvals,
    "rollback_action": _read_rollback,
    "audit_sources": _read_audit_sources,
    "cleanup_rule": _read_cleanup,
    "rollout_stages": _read_stages,
    "environments": _read_environments,
    "tools": _read_tools,
}


def _at(body: MapNode, name: str) -> Node:
    """The node of a field (its value), or the block when the field is absent."""
    return body.get(name) or body


def _cross_check(r: _Reader, c: Contract, body: MapNode) -> None:
    """What the fields say together: every mode served is allowed, audiences exist."""
    allowed = c.allowed_modes
    if r.problems:
        return
    if c.default_state not in allowed:
        r.fail(
            f"{ROOT}.default_state",
            _at(body, "default_state"),
            f"{c.default_state!r} is not one of the allowed_modes",
        )
    if c.rollback is not None and c.rollback.variation not in (None, *allowed):
        node = _at(body, "rollback_action")
        variation = node.get("variation") if isinstance(node, MapNode) else None
        r.fail(
            f"{ROOT}.rollback_action.variation",
            variation or node,
            f"fallback {c.rollback.variation!r} is outside the allowed_modes",
        )
    envs = body.get("environments")
    for env, state in c.environments.items():
        where = f"{ROOT}.environments.{env}"
        env_node = envs.get(env) if isinstance(envs, MapNode) else None
        at = env_node or body
        if state.mode is not None and state.mode not in allowed:
            mode_node = env_node.get("mode") if isinstance(env_node, MapNode) else None
            r.fail(
                f"{where}.mode",
                mode_node or at,
                f"mode {state.mode!r} is outside the allowed_modes",
            )
        if state.state == "first_audience" and (
            c.first_audience is None or not c.first_audience.executable
        ):
            audience = body.get("first_audience") or at
            r.fail(
                f"{ROOT}.first_audience",
                audience,
                f"names no segment or clauses, but environments.{env} serves the first audience",
            )
    for i, stage in enumerate(c.stages):
        if stage.mode not in allowed:
            r.fail(
                f"{ROOT}.rollout_stages[{i}].mode",
                _stage_node(body, i),
                f"mode {stage.mode!r} is outside the allowed_modes",
            )
    rank = MODES.index
    capped = [a for a in c.approvals if a.clause is not None or a.segment is not None]
    serves_above = any(
        s.mode is not None and rank(s.mode) > rank(Mode.APPROVAL_REQUIRED.value)
        for s in c.environments.values()
    )
    if capped and serves_above and Mode.APPROVAL_REQUIRED.value not in allowed:
        r.fail(
            f"{ROOT}.allowed_modes",
            _at(body, "allowed_modes"),
            "approval_required_when binds conditions, so approval_required must be allowed",
        )


def _stage_node(body: MapNode, index: int) -> Node:
    stages = body.get("rollout_stages")
    if isinstance(stages, SeqNode) and index < len(stages.items):
        item = stages.items[index]
        mode = item.get("mode") if isinstance(item, MapNode) else None
        return mode or item
    return body
