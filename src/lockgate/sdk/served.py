"""What a shared result means for the decision log, worked out once per snapshot.

The engine returns the same :class:`EvaluationDetail` object to every context that gets
the same serve of a behavior, and the tool gate the same :class:`ToolDecision` to every
call with the same mode, tool and behavior. What a networked client does with one (the
count key, whether it is a full decision record and the record's fields, whether a
tracked metric is bound to the behavior) depends only on that object and the snapshot. A
:class:`ServedTable` keeps those answers per object, keyed by the object's identity, so
the counted hot path (``Client.mode()``, ``Client.authorize_tool()``) spends one
dictionary read on them instead of building and looking up keys on every call.

Why identity is safe: each entry holds the object it describes, so no other object can
take its ``id`` while the entry exists: an object found under an ``id`` in the table *is*
the object its entry describes. A result belongs to one behavior (the engine builds it for
that behavior's compiled flag alone). The table is replaced, never edited back, after
every snapshot update (after the watch table and metric bindings of the new snapshot are
in place), so an answer never outlives the snapshot it was worked out for. It is bounded:
past ``MAX_ENTRIES`` results, calls take the general path. Only results the engine shares
are kept (a result built for one call, like an error serving the caller's default, is
not).

Thread safety: entries are created whole, never changed, and stored with one dictionary
assignment; two threads racing on a new result store equal entries (sharing one pinned
counter cell, :meth:`lockgate.sdk.counts.EvaluationCounts.pin`), one of which is kept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from lockgate.decisionlog import DecisionKind
from lockgate.engine import EvaluationDetail, Mode
from lockgate.engine.tools import CompiledTool, ToolDecision, ToolGate, ToolOutcome
from lockgate.sdk.decisions import DecisionRecorder, Head

__all__ = [
    "MAX_ENTRIES",
    "Outcome",
    "Run",
    "Served",
    "ServedTable",
    "ToolPlan",
    "ToolPlans",
    "refusal_head",
]

Run = Callable[[Mapping[str, Any]], EvaluationDetail]
Outcome = tuple[ToolDecision, Head | None]
"""A tool decision and, when it refuses the call, its record fields."""
ToolPlans = dict[str, "ToolPlan"]
"""One tool's plans, per behavior."""

MAX_ENTRIES = 4_096
"""Results remembered per table (a snapshot's behaviors share far fewer)."""


class Served:
    """One shared result of a mode behavior and what serving it means."""

    __slots__ = ("cell", "detail", "head", "mode", "more", "tracked")

    def __init__(
        self,
        detail: EvaluationDetail,
        mode: Mode,
        cell: Iterator[int],
        head: Head | None,
        *,
        tracked: bool,
    ) -> None:
        self.detail = detail
        self.mode = mode
        """The mode served."""
        self.cell = cell
        """The pinned counter cell of the evaluation count (a cell nobody reads when
        counting is off): ``next(cell)`` counts one."""
        self.head = head
        """The decision record's fields when this result is one (``None``: counted only)."""
        self.tracked = tracked
        """Whether a tracked metric is bound to the behavior (remember who was served)."""
        self.more = head is not None or tracked
        """Whether serving it takes more than a count."""


class ToolPlan:
    """One tool under one behavior: the snapshot's decisions for it by mode, and by denial
    and mode, with their record fields (a tool without a budget; budgets count calls)."""

    __slots__ = ("_gate", "behavior", "by_mode", "denied", "screen", "tool")

    def __init__(self, gate: ToolGate, tool: CompiledTool, behavior: str) -> None:
        self._gate = gate
        self.tool = tool
        self.behavior = behavior
        self.by_mode: dict[Mode, Outcome] = {
            mode: (decision, refusal_head(decision))
            for mode, decision in gate.decisions(behavior, tool).items()
        }
        self.screen: Callable[[Mapping[str, Any]], str | None] | None = (
            tool.denial if tool.denied_all is not None or tool.denials else None
        )
        """The denial that applies to a context (``None``: the tool has no denial)."""
        self.denied: dict[tuple[str, Mode], Outcome] = {}

    def denial(self, denial: str, mode: Mode) -> Outcome:
        """The decision of ``denial`` for ``mode`` (worked out on first use)."""
        found = self.denied.get((denial, mode))
        if found is None:
            decision = self._gate.denied(self.behavior, self.tool, mode, denial)
            found = self.denied[(denial, mode)] = (decision, refusal_head(decision))
        return found


def refusal_head(decision: ToolDecision) -> Head | None:
    """The record fields of a tool decision that refuses the call (``None`` if it allows)."""
    if decision.outcome is ToolOutcome.ALLOW:
        return None
    kind = (
        DecisionKind.TOOL_APPROVAL_REQUIRED if decision.needs_approval else DecisionKind.TOOL_DENIED
    )
    detail = {"tool": decision.tool}
    if decision.risk is not None:
        detail["risk"] = decision.risk.value
    mode = None if decision.mode is None else decision.mode.value
    return DecisionRecorder.prepare(
        kind, decision.behavior, mode, decision.reason.value, decision.rule, detail
    )


class ServedTable:
    """Results of one snapshot (mode evaluations and refused tool decisions), by identity."""

    __slots__ = ("modes", "refusals", "runs", "tools")

    def __init__(self) -> None:
        self.runs: dict[str, Run] = {}
        """The compiled evaluators of the mode behaviors asked for, by key."""
        self.modes: dict[int, Served] = {}
        self.refusals: dict[int, tuple[ToolDecision, Head | None]] = {}
        """The record fields of refused tool decisions, by the decision's identity."""
        self.tools: dict[str, ToolPlans | None] = {}
        """Per tool (``None``: one with a budget, always decided in full), per behavior."""

    @staticmethod
    def keep_run(runs: dict[str, Run], key: str, run: Run) -> None:
        """Keep ``run`` in ``runs`` (this table's, or one a newer table replaced)."""
        if len(runs) < MAX_ENTRIES:
            runs[key] = run

    @staticmethod
    def keep_plans(
        tables: dict[str, ToolPlans | None], tool: str, plans: ToolPlans | None
    ) -> ToolPlans | None:
        """Keep ``plans`` for ``tool`` in ``tables`` (this table's, or a replaced one)."""
        if len(tables) < MAX_ENTRIES:
            return tables.setdefault(tool, plans)
        return None

    def keep_mode(self, served: Served) -> None:
        if len(self.modes) < MAX_ENTRIES:
            self.modes[id(served.detail)] = served

    def keep_refusal(self, decision: ToolDecision, head: Head | None) -> None:
        if len(self.refusals) < MAX_ENTRIES:
            self.refusals[id(decision)] = (decision, head)
