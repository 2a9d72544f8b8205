"""Tool tiers: whether a behavior may call one tool for one context, decided locally.

A project registers the tools its applications let behaviors call, each with a risk class
(``read`` < ``draft`` < ``write`` < ``external`` < ``irreversible``). For one call the
decision is, in this order (docs/agents.md):

1. a tool that is not registered is denied;
2. a tool denied for everyone, or for an audience the context belongs to, is denied;
3. the behavior's mode for the context, its risk tier and the tool's risk class give the
   outcome of the tier policy — the default table below, with the project's overrides.

Default tier policy:

================= ===== ===== ======== ======== ============
mode              read  draft write    external irreversible
================= ===== ===== ======== ======== ============
off, fallback     deny  deny  deny     deny     deny
observe           allow deny  deny     deny     deny
draft_only        allow allow deny     deny     deny
approval_required allow allow approval approval approval
full              allow allow allow    allow    allow (low, medium); approval (high, restricted)
================= ===== ===== ======== ======== ============

(``approval``: the outcome ``approval_required`` — only after a runtime approval.)

Per-tool call budgets are data here; counting them needs a clock and happens in the SDK.
Standard library only; no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from lockgate.engine.model import Snapshot, ToolSpec
from lockgate.engine.modes import Mode
from lockgate.engine.operators import SEGMENT_MATCH, string_fast_test, string_members

__all__ = [
    "RISK_TIERS",
    "CompiledTool",
    "RiskClass",
    "StringScreen",
    "ToolDecision",
    "ToolGate",
    "ToolOutcome",
    "ToolReason",
    "budget_exhausted",
    "default_outcome",
    "error",
    "not_ready",
    "normalize_tool_policy",
    "policy_outcome",
    "policy_table",
]

RISK_TIERS = ("low", "medium", "high", "restricted")
"""A behavior's risk tiers, lowest first (the same words as the behavior's ``risk_tier``)."""


class RiskClass(StrEnum):
    """What calling a tool can do, from harmless to impossible to undo."""

    READ = "read"
    DRAFT = "draft"
    WRITE = "write"
    EXTERNAL = "external"
    IRREVERSIBLE = "irreversible"

    @property
    def rank(self) -> int:
        return _RISK_RANK[self]


_RISK_RANK = {risk: index for index, risk in enumerate(RiskClass)}


class ToolOutcome(StrEnum):
    """What the application may do with one tool call."""

    ALLOW = "allow"
    DENY = "deny"
    APPROVAL_REQUIRED = "approval_required"


class ToolReason(StrEnum):
    """Why a tool call got its outcome. Members equal their wire values."""

    POLICY = "POLICY"
    """The tier policy decided (``rule`` names the cell: ``default`` or an override)."""
    NOT_REGISTERED = "NOT_REGISTERED"
    TOOL_DENIED = "TOOL_DENIED"
    """The tool is denied for everyone, or for an audience of this context (``rule``)."""
    BUDGET_EXHAUSTED = "BUDGET_EXHAUSTED"
    NOT_READY = "NOT_READY"
    ERROR = "ERROR"


def default_outcome(mode: Mode, risk: RiskClass, tier: str) -> ToolOutcome:
    """The default tier policy (the table in this module's docstring)."""
    if mode is Mode.FULL:
        if risk is RiskClass.IRREVERSIBLE and tier not in ("low", "medium"):
            return ToolOutcome.APPROVAL_REQUIRED  # unknown tiers count as restricted
        return ToolOutcome.ALLOW
    if mode is Mode.APPROVAL_REQUIRED:
        if risk.rank <= _RISK_RANK[RiskClass.DRAFT]:
            return ToolOutcome.ALLOW
        return ToolOutcome.APPROVAL_REQUIRED
    if mode is Mode.DRAFT_ONLY and risk.rank <= _RISK_RANK[RiskClass.DRAFT]:
        return ToolOutcome.ALLOW
    if mode is Mode.OBSERVE and risk is RiskClass.READ:
        return ToolOutcome.ALLOW
    return ToolOutcome.DENY


def normalize_tool_policy(data: object) -> tuple[dict[str, dict[str, Any]], list[tuple[str, str]]]:
    """The project's overrides in their one form, and ``(path, message)`` problems.

    ``{"<mode>": {"<risk class>": "<outcome>" | {"<risk tier>": "<outcome>"}}}``: a plain
    outcome applies to every risk tier; a mapping to the tiers it names (the others keep
    the default).
    """
    problems: list[tuple[str, str]] = []
    if not isinstance(data, Mapping):
        return {}, [("tool_policy", "must be an object keyed by mode")]
    table: dict[str, dict[str, Any]] = {}
    for mode, row in data.items():
        path = f"tool_policy.{mode}"
        if Mode.parse(mode) is None:
            problems.append((path, f"unknown mode; one of {', '.join(Mode)}"))
        elif not isinstance(row, Mapping):
            problems.append((path, "must be an object keyed by risk class"))
        else:
            cells = _policy_row(row, path, problems)
            if cells:
                table[str(mode)] = cells
    return table, problems


def _policy_row(
    row: Mapping[Any, Any], path: str, problems: list[tuple[str, str]]
) -> dict[str, Any]:
    cells: dict[str, Any] = {}
    for risk, cell in row.items():
        where = f"{path}.{risk}"
        if risk not in _RISK_RANK:
            problems.append((where, f"unknown risk class; one of {', '.join(RiskClass)}"))
        elif isinstance(cell, str):
            if _outcome_problem(cell, where, problems):
                cells[str(risk)] = cell
        elif isinstance(cell, Mapping) and cell:
            by_tier = {}
            for tier, outcome in cell.items():
                if tier not in RISK_TIERS:
                    problems.append(
                        (f"{where}.{tier}", f"unknown risk tier; one of {', '.join(RISK_TIERS)}")
                    )
                elif _outcome_problem(outcome, f"{where}.{tier}", problems):
                    by_tier[str(tier)] = outcome
            if by_tier:
                cells[str(risk)] = dict(sorted(by_tier.items()))
        else:
            problems.append((where, "must be an outcome or an object keyed by risk tier"))
    return dict(sorted(cells.items()))


def _outcome_problem(value: object, where: str, problems: list[tuple[str, str]]) -> bool:
    if isinstance(value, str) and value in ToolOutcome.__members__.values():
        return True
    problems.append((where, f"must be one of {', '.join(ToolOutcome)}"))
    return False


def policy_outcome(
    overrides: Mapping[str, Mapping[str, Any]], mode: Mode, risk: RiskClass, tier: str
) -> tuple[ToolOutcome, str]:
    """The outcome of the tier policy and the rule that gave it (``default`` or the
    override's path, e.g. ``tool_policy.full.irreversible.high``)."""
    cell = overrides.get(mode.value, {}).get(risk.value)
    if isinstance(cell, str):
        return ToolOutcome(cell), f"tool_policy.{mode.value}.{risk.value}"
    if isinstance(cell, Mapping) and tier in cell:
        return ToolOutcome(cell[tier]), f"tool_policy.{mode.value}.{risk.value}.{tier}"
    return default_outcome(mode, risk, tier), "default"


def policy_table(
    overrides: Mapping[str, Mapping[str, Any]],
) -> dict[str, dict[str, dict[str, str]]]:
    """The whole effective policy: risk tier → mode → risk class → outcome."""
    return {
        tier: {
            mode.value: {
                risk.value: policy_outcome(overrides, mode, risk, tier)[0].value
                for risk in RiskClass
            }
            for mode in Mode
        }
        for tier in RISK_TIERS
    }


@dataclass(frozen=True, slots=True)
class ToolDecision:
    """Whether a behavior may call a tool for one context, and why. Shared and immutable:
    the same instance answers every call with the same outcome."""

    outcome: ToolOutcome
    reason: ToolReason
    behavior: str
    tool: str
    mode: Mode | None = None
    risk: RiskClass | None = None
    rule: str | None = None
    message: str = ""

    @property
    def allowed(self) -> bool:
        return self.outcome is ToolOutcome.ALLOW

    @property
    def denied(self) -> bool:
        return self.outcome is ToolOutcome.DENY

    @property
    def needs_approval(self) -> bool:
        return self.outcome is ToolOutcome.APPROVAL_REQUIRED

    def document(self) -> dict[str, Any]:
        """The decision as plain JSON."""
        return {
            "outcome": self.outcome.value,
            "reason": self.reason.value,
            "behavior": self.behavior,
            "tool": self.tool,
            "mode": None if self.mode is None else self.mode.value,
            "risk": None if self.risk is None else self.risk.value,
            "rule": self.rule,
            "message": self.message,
        }


Predicate = Callable[[Mapping[str, Any]], bool]


class CompiledTool:
    """One registered tool: its audience denials compiled, its decisions per behavior."""

    __slots__ = (
        "budget",
        "by_behavior",
        "denials",
        "denied",
        "denied_all",
        "key",
        "risk",
        "string_screen",
    )

    def __init__(self, spec: ToolSpec, clause: Callable[[Any], Predicate]) -> None:
        self.key = spec.key
        self.risk = RiskClass(spec.risk)
        self.budget = spec.budget
        everyone = next((d for d in spec.deny if not d.clauses), None)
        self.denied_all = None if everyone is None else everyone.id
        self.denials = tuple(
            (denial.id, _all_of([clause(c) for c in denial.clauses]))
            for denial in spec.deny
            if denial.clauses
        )
        self.by_behavior: dict[str, dict[Mode, ToolDecision]] = {}
        self.denied: dict[tuple[str, str, Mode], ToolDecision] = {}
        self.string_screen = _string_screen(spec) if everyone is None else None
        """``(attribute, test, members)`` when the tool has one audience denial of one
        clause that has a string fast path (:func:`lockgate.engine.operators.string_fast_test`):
        for a context whose ``attribute`` is a ``str``, that denial applies exactly when
        ``test(value)`` is true, which for ``equals`` and ``in`` is ``value in members``
        (:func:`lockgate.engine.operators.string_members`; ``None`` for other operators):
        what its compiled predicate answers, without the call."""

    def denial(self, context: Mapping[str, Any]) -> str | None:
        """The id of the denial that applies to ``context``: the one for everyone, else the
        first audience it belongs to; ``None`` when the tool is not denied to it."""
        if self.denied_all is not None:
            return self.denied_all
        for denial_id, matches in self.denials:
            if matches(context):
                return denial_id
        return None


StringScreen = tuple[str, Callable[[str], Any], frozenset[str] | None]


def _string_screen(spec: ToolSpec) -> StringScreen | None:
    if len(spec.deny) != 1 or len(spec.deny[0].clauses) != 1:
        return None
    (clause,) = spec.deny[0].clauses
    if clause.op == SEGMENT_MATCH or clause.negate:
        return None
    op, values, fold = clause.op, clause.values, clause.case_insensitive
    test = string_fast_test(op, values, fold)
    members = string_members(op, values, fold)
    return None if test is None else (clause.attribute or "", test, members)


def _all_of(predicates: list[Predicate]) -> Predicate:
    if len(predicates) == 1:
        return predicates[0]
    return lambda ctx: all(p(ctx) for p in predicates)


class ToolGate:
    """The tools of one snapshot, ready to decide calls (built once per snapshot).

    ``clause`` compiles one clause into a predicate on a context (the evaluation engine's,
    so segment membership and operators mean exactly what they mean for flags).
    """

    __slots__ = ("_overrides", "_snapshot", "tools")

    def __init__(self, snapshot: Snapshot, clause: Callable[[Any], Predicate]) -> None:
        self._snapshot = snapshot
        self._overrides = snapshot.tool_policy
        self.tools = {key: CompiledTool(spec, clause) for key, spec in snapshot.tools.items()}

    def decide(
        self, behavior: str, tool: str, mode: Mode, context: Mapping[str, Any]
    ) -> ToolDecision:
        """The decision for calling ``tool`` under ``behavior`` served ``mode`` for
        ``context`` (budgets not counted). Never raises for a mapping context."""
        compiled = self.tools.get(tool)
        if compiled is None:
            return _unregistered(behavior, tool)
        denial = compiled.denial(context)
        if denial is not None:
            return self.denied(behavior, compiled, mode, denial)
        decisions = compiled.by_behavior.get(behavior)
        if decisions is None:
            decisions = self.decisions(behavior, compiled)
        return decisions[mode]

    def denied(
        self, behavior: str, compiled: CompiledTool, mode: Mode, denial: str
    ) -> ToolDecision:
        """The decision of ``denial`` (an id from :meth:`CompiledTool.denial`), shared like
        the policy's (kept for behaviors the snapshot has)."""
        key = (behavior, denial, mode)
        found = compiled.denied.get(key)
        if found is None:
            found = _denied(behavior, compiled.key, compiled, mode, denial)
            if behavior in self._snapshot.flags:  # bounded by the snapshot's behaviors
                compiled.denied[key] = found
        return found

    def decisions(self, behavior: str, compiled: CompiledTool) -> dict[Mode, ToolDecision]:
        """The policy's decision for each mode of ``behavior`` (kept for behaviors the
        snapshot has)."""
        flag = self._snapshot.flags.get(behavior)
        tier = str(flag.meta.get("risk_tier") or "low") if flag is not None else "restricted"
        out = {}
        for mode in Mode:
            outcome, rule = policy_outcome(self._overrides, mode, compiled.risk, tier)
            message = (
                f"tool {compiled.key!r} ({compiled.risk.value}) is {_VERB[outcome]} "
                f"in mode {mode.value} for a {tier}-risk behavior ({rule})"
            )
            out[mode] = ToolDecision(
                outcome,
                ToolReason.POLICY,
                behavior,
                compiled.key,
                mode,
                compiled.risk,
                rule,
                message,
            )
        if flag is not None:  # bounded by the snapshot's behaviors
            compiled.by_behavior[behavior] = out
        return out


_VERB = {
    ToolOutcome.ALLOW: "allowed",
    ToolOutcome.DENY: "denied",
    ToolOutcome.APPROVAL_REQUIRED: "allowed only after a runtime approval",
}


def _unregistered(behavior: str, tool: str) -> ToolDecision:
    return ToolDecision(
        ToolOutcome.DENY,
        ToolReason.NOT_REGISTERED,
        behavior,
        tool,
        message=f"tool {tool!r} is not registered in this project",
    )


def _denied(
    behavior: str, tool: str, compiled: CompiledTool, mode: Mode, denial: str
) -> ToolDecision:
    return ToolDecision(
        ToolOutcome.DENY,
        ToolReason.TOOL_DENIED,
        behavior,
        tool,
        mode,
        compiled.risk,
        denial,
        f"tool {tool!r} is denied ({denial})",
    )


def not_ready(behavior: str, tool: str) -> ToolDecision:
    """Before the first snapshot: every call is denied."""
    return ToolDecision(
        ToolOutcome.DENY, ToolReason.NOT_READY, behavior, tool, message="no data yet"
    )


def budget_exhausted(decision: ToolDecision, calls: int, window: int, per: str) -> ToolDecision:
    return ToolDecision(
        ToolOutcome.DENY,
        ToolReason.BUDGET_EXHAUSTED,
        decision.behavior,
        decision.tool,
        decision.mode,
        decision.risk,
        f"budget {calls}/{window}s per {per}",
        f"tool {decision.tool!r} used {calls} times in {window}s for this {per}",
    )


def error(behavior: str, tool: str, message: str) -> ToolDecision:
    return ToolDecision(ToolOutcome.DENY, ToolReason.ERROR, behavior, tool, message=message)
